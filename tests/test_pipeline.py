"""`reasonrl run`: a miniature recipe with every stage kind, re-runs, changed stages, bad recipes."""

import json
from pathlib import Path

import pytest
import yaml

from tests.stages.conftest import run_cli

RECIPE = Path(__file__).parent / "data" / "mini-recipe.yaml"
STAGES = ["base", "r1_zero", "rejection", "cold_start", "r1", "student", "eval"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    run_cli("run", str(RECIPE), f"run.dir={root}")
    return root / "mini"


def _run_verbose(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "reasonrl", *args], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, timeout=600)


def _mtimes(root):
    return {p: p.stat().st_mtime_ns for p in sorted(root.glob("stages/*/model/model.safetensors"))}


def test_every_stage_runs_and_the_lineage_names_its_inputs(pipeline):
    assert all((pipeline / "stages" / name / "stage.json").is_file() for name in STAGES)
    lineage = json.loads((pipeline / "lineage.json").read_text())
    assert set(lineage) == set(STAGES)
    assert lineage["r1_zero"]["inputs"]["model.path"] == {"from": "base.model",
                                                         "path": str(pipeline / "stages" / "base" / "model")}
    assert lineage["cold_start"]["inputs"]["data.path"]["path"] == str(pipeline / "stages" / "rejection" / "dataset.jsonl")
    assert lineage["eval"]["inputs"]["models"]["from"] == ["base.model", "r1_zero.model", "r1.model", "student.model"]
    summary = json.loads((pipeline / "summary.json").read_text())
    for name in ("base", "r1_zero", "r1", "student"):  # the evaluated models, with their test-split numbers
        row = summary["stages"][name]
        assert {"pass@1", "cons@2", "mean_length", "reflection_rate", "lang_mix_rate", "checkpoint"} <= set(row)
        assert row["split"] == "test" and Path(row["checkpoint"]).is_dir()
    assert (pipeline / "report.html").is_file()


def test_a_finished_run_rerun_does_nothing_and_says_so(pipeline):
    """(The fixture ran with --quiet, this re-run without it: how a run is shown is no change.)"""
    before = _mtimes(pipeline)
    out = _run_verbose("run", str(RECIPE), f"run.dir={pipeline.parent}")
    assert _mtimes(pipeline) == before
    text = " ".join((out.stdout + out.stderr).split())  # progress and messages go to stderr
    assert out.returncode == 0 and "already complete; nothing ran" in text, text[-2000:]


def _bad(tmp_path, mutate):
    recipe = yaml.safe_load(RECIPE.read_text())
    mutate(recipe)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["stages"][1].update(kind="rll"), "unknown stage kind 'rll'"),
    (lambda r: r["stages"][1].update(init="r1.model"), "names no earlier stage"),
    (lambda r: r["stages"][1].update(init="nosuch.model"), "names no earlier stage"),
    (lambda r: r["stages"][3].update(data="rejection.datasets"), "has no output 'datasets'"),
    (lambda r: r["stages"][1]["config"]["rl"].update(stepz=3), "did you mean 'rl.steps'"),
    (lambda r: r["stages"][1]["config"]["rl"].update(algorithm="grpoo"), "did you mean 'grpo'"),
    (lambda r: r["stages"].append(dict(r["stages"][0])), "the name is used twice"),
])
def test_bad_recipes_fail_before_anything_runs(tmp_path, mutate, message):
    out = run_cli("run", str(_bad(tmp_path, mutate)), f"run.dir={tmp_path / 'runs'}", check=False)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert not (tmp_path / "runs").exists()


def test_bad_override_is_one_line(tmp_path):
    out = run_cli("run", str(RECIPE), f"run.dir={tmp_path}", "stages.nosuch.rl.steps=3", check=False)
    assert out.returncode == 2 and "no stage named 'nosuch'" in out.stderr


def test_a_changed_stage_reruns_with_everything_downstream(pipeline):
    """(Runs after the tests above: it changes the shared pipeline.)"""
    before = _mtimes(pipeline)
    run_cli("run", str(RECIPE), f"run.dir={pipeline.parent}", "stages.r1.rl.steps=3")
    after = _mtimes(pipeline)
    changed = {p.parts[-3] for p in after if after[p] != before.get(p)} - {"r1.superseded-1"}
    assert changed == {"r1"}, changed  # base, r1_zero, cold_start are kept as they were
    for name in ("r1", "student", "eval"):  # the changed stage and everything downstream of it
        assert (pipeline / "stages" / f"{name}.superseded-1").is_dir(), name
    for name in ("base", "r1_zero", "rejection", "cold_start"):
        assert not (pipeline / "stages" / f"{name}.superseded-1").exists(), name
    rows = [json.loads(line) for line in (pipeline / "stages" / "r1" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]


@pytest.mark.slow
def test_killed_mid_stage_resumes_without_redoing_finished_stages(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    args = ["run", str(RECIPE), f"run.dir={tmp_path}", "stages.r1.rl.steps=40", "stages.r1.checkpoint.every=1"]
    proc = subprocess.Popen([sys.executable, "-m", "reasonrl", *args, "--quiet"], cwd=Path(__file__).parent.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    r1 = tmp_path / "mini" / "stages" / "r1"
    deadline = time.time() + 300
    while not (r1 / "checkpoints" / "step-00000003").is_dir():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (r1 / "stage.json").exists()  # really killed mid-stage
    before = _mtimes(tmp_path / "mini")
    out = _run_verbose(*args)
    assert out.returncode == 0, out.stderr[-2000:]
    after = _mtimes(tmp_path / "mini")
    for stage in ("base", "r1_zero", "cold_start"):  # finished before the kill: not trained again
        path = tmp_path / "mini" / "stages" / stage / "model" / "model.safetensors"
        assert after[path] == before[path], stage
    text = " ".join((out.stdout + out.stderr).split())
    assert "resum" in text.lower(), text[-2000:]
    steps = [json.loads(line)["step"] for line in (r1 / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 41))  # each step once: resumed, not restarted or repeated
    assert (r1 / "stage.json").is_file() and (tmp_path / "mini" / "summary.json").is_file()
