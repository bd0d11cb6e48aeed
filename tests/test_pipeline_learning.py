"""The demo's claim at a reduced scale: R1-Zero (GRPO on a pretrained tiny DeepSeek-V3) beats its
base on held-out test problems, by a paired difference whose confidence interval excludes 0."""

import json
from pathlib import Path

import pytest

from tests.stages.conftest import run_cli

RECIPE = Path(__file__).parent / "data" / "reduced-r1zero.yaml"


@pytest.mark.slow
def test_reduced_r1_zero_beats_its_base_on_the_test_split(tmp_path):
    run_cli("run", str(RECIPE), f"run.dir={tmp_path}", timeout=1200)
    results = json.loads((tmp_path / "reduced-r1zero" / "stages" / "eval" / "eval_results.json").read_text())
    assert results["settings"]["split"] == "test"
    diff = next(d for d in results["diff"] if d["model"] == "r1_zero")
    # Measured: +53.4 points [+49.8, +57.1] (base 46.5%, R1-Zero 99.9%). A fixed seed makes the run
    # deterministic on one machine, but other CPUs round differently, so the bar is a clear gain
    # (the 15 points) rather than the measured number.
    assert diff["pass@1"]["value"] >= 0.15, diff
    assert diff["pass@1"]["ci95"][0] > 0, diff
