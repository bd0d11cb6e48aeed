"""The stage runner's guarantees, each shown with a fault injected at an exact point
(tests/stages/faults.py): an interrupted run, resumed, ends bitwise where an uninterrupted one
does; a corrupt or unwritable checkpoint costs steps, never correctness; a diverged run stops
with one line; a finished run is not redone and a changed config is not resumed silently."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.stages.conftest import REPO, TINY_PRETRAIN
from tests.stages.test_rl import TOY

# RL with a KL reference that is never reset (the anchor only a checkpoint can restore), two
# updates per step (so an interrupt can fall between them) and an evaluation after every step
RL = (*TOY, "rl.steps=4", "checkpoint.every=2", "rl.beta=0.04", "rl.ref_reset_every=0", "rl.mu=2",
      "optim.lr=1e-3", "eval.every=1", "samples_every=1")
VOLATILE = ("step_time_s", "tokens_per_s/gen", "tokens_per_s/train", "time/")  # wall-clock metrics


def reasonrl(*args, faults=(), quiet=True):
    """The CLI in a subprocess, with `faults` injected (see faults.py)."""
    cmd = [sys.executable, "-m", "tests.stages.faults", *faults, "--", *args, *(["--quiet"] if quiet else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "250"}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def ok(out):
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def rl_args(run_dir, base, name):
    return ("rl", *RL, f"model.path={base}", f"run.dir={run_dir}", f"run.name={name}")


def weights(path):
    return load_file(str(path / "model.safetensors"))


def same_weights(a, b):
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def rows(run, name="metrics.jsonl"):
    return [json.loads(line) for line in (run / name).read_text().splitlines()]


def stable(run, no_eval_at=()):
    """metrics.jsonl without the wall-clock columns: what must match an uninterrupted run (less the
    evaluation at the steps in `no_eval_at`, when it was interrupted)."""
    return [{k: v for k, v in row.items() if not k.startswith(VOLATILE)
             and not (row["step"] in no_eval_at and k.startswith("eval/"))} for row in rows(run)]


def assert_same_as_straight(run, straight, no_eval_at=()):
    assert same_weights(run / "model", straight / "model"), "resumed weights differ from the uninterrupted run"
    assert stable(run, no_eval_at) == stable(straight, no_eval_at), \
        "metrics differ from the uninterrupted run (or a step is logged twice)"


@pytest.fixture(scope="module")
def straight(tmp_path_factory, tiny_base):
    """The uninterrupted reference run every interrupted one must reproduce bitwise."""
    root = tmp_path_factory.mktemp("straight")
    ok(reasonrl(*rl_args(root, tiny_base, "straight")))
    return root / "straight"


def test_kill_9_with_a_kl_reference_resumes_bitwise(tmp_path, tiny_base, straight):
    args = rl_args(tmp_path, tiny_base, "killed")
    out = reasonrl(*args, faults=["kill-after-save=2"])
    assert out.returncode == -9 and not (tmp_path / "killed" / "model").exists()
    assert "(step 2)" in ok(reasonrl(*args, quiet=False)).stderr  # resumed, not started afresh
    assert_same_as_straight(tmp_path / "killed", straight)
    # the KL term is measured against the original policy after the resume too, not the resumed one
    assert all(row["kl"] > 0 for row in rows(tmp_path / "killed")[2:])


def test_ctrl_c_during_an_evaluation_checkpoints_exactly_the_steps_done(tmp_path, tiny_base, straight):
    args = rl_args(tmp_path, tiny_base, "int")
    out = reasonrl(*args, faults=["sigint-in-eval=1"])  # the evaluation after step 1
    assert out.returncode == 130 and "Traceback" not in out.stderr, out.stderr
    ckpt = tmp_path / "int" / "checkpoints" / "step-00000001"
    assert sorted(p.name for p in ckpt.parent.iterdir()) == [ckpt.name]
    # named for step 1, holding step 1: what a resume starts from is what the name says
    assert torch.load(ckpt / "trainer_state.pt", weights_only=True)["trainer"]["step"] == 2  # mu=2 updates
    assert [r["step"] for r in rows(tmp_path / "int")] == [1]
    ok(reasonrl(*args))
    assert_same_as_straight(tmp_path / "int", straight, no_eval_at=(1,))


@pytest.mark.parametrize("update", [3, 4], ids=["between-two-updates", "after-the-steps-last-update"])
def test_ctrl_c_inside_a_step_finishes_it_first(tmp_path, tiny_base, straight, update):
    args = rl_args(tmp_path, tiny_base, "int")
    out = reasonrl(*args, faults=[f"sigint-after-update={update}"])  # step 2 makes updates 3 and 4
    assert out.returncode == 130 and "Traceback" not in out.stderr, out.stderr
    ckpts = tmp_path / "int" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-00000002"]
    assert same_weights(ckpts / "step-00000002", straight / "checkpoints" / "step-00000002")
    ok(reasonrl(*args))
    assert_same_as_straight(tmp_path / "int", straight, no_eval_at=(2,))  # stopped before step 2's evaluation
