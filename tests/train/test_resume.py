"""Kill -9 in the middle of a checkpoint write, resume, and get bitwise the uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from reasonrl.train.checkpoint import latest_checkpoint
from tests.train import resume_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = [sys.executable, "-m", "tests.train.resume_script"]
FLAGS = ["--steps", "10", "--every", "4"]


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _start(out: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([*SCRIPT, str(out), *FLAGS, *flags], cwd=REPO, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> None:
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the run never reached the hang point"
        time.sleep(0.05)


def _run_here(out: Path) -> None:
    """The uninterrupted reference, in this process (a third torch start-up costs more than the
    run); with the script's single thread, and leaving this process's RNG and threads as found."""
    threads = torch.get_num_threads()
    try:
        with torch.random.fork_rng():
            resume_script.main([str(out), *FLAGS])
    finally:
        torch.set_num_threads(threads)


def test_sigkill_mid_checkpoint_then_resume_is_bitwise_identical(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    victim = _start(killed, "--hang-at-save", "8")
    _run_here(straight)
    _wait_for(killed / "hung", victim)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=30)
    ckpts = killed / "checkpoints"
    assert any(p.name.startswith(".tmp-step-00000008") for p in ckpts.iterdir())   # half-written step 8
    assert latest_checkpoint(ckpts, clean_stale=False) == ckpts / "step-00000004"

    _finish(_start(killed))   # same command: resumes from step 4
    a, b = load_file(str(straight / "final.safetensors")), load_file(str(killed / "final.safetensors"))
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)
    at_step_8 = load_file(str(ckpts / "step-00000008" / "model.safetensors"))
    assert not torch.equal(a["proj.weight"], at_step_8["proj.weight"])   # training moved on after step 8
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-00000008", "step-00000010"]
    # Every step is logged once, with the values the uninterrupted run logged.
    assert _timeless_rows(killed / "metrics.jsonl") == _timeless_rows(straight / "metrics.jsonl")


def _timeless_rows(path: Path) -> list[dict]:
    """metrics.jsonl rows without the wall-clock phase timers (time/...), which no two runs share."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]
