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


@pytest.mark.slow  # the Ctrl-C tests below resume with the same never-reset reference in the fast tier
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


@pytest.mark.parametrize("update", [3, pytest.param(4, marks=pytest.mark.slow)],
                         ids=["between-two-updates", "after-the-steps-last-update"])
def test_ctrl_c_inside_a_step_finishes_it_first(tmp_path, tiny_base, straight, update):
    args = rl_args(tmp_path, tiny_base, "int")
    out = reasonrl(*args, faults=[f"sigint-after-update={update}"])  # step 2 makes updates 3 and 4
    assert out.returncode == 130 and "Traceback" not in out.stderr, out.stderr
    ckpts = tmp_path / "int" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-00000002"]
    assert same_weights(ckpts / "step-00000002", straight / "checkpoints" / "step-00000002")
    ok(reasonrl(*args))
    assert_same_as_straight(tmp_path / "int", straight, no_eval_at=(2,))  # stopped before step 2's evaluation


@pytest.fixture(scope="module")
def killed_at_4(tmp_path_factory, tiny_base):
    """A run killed right after its step-4 checkpoint (steps 2 and 4 kept, no model yet)."""
    root = tmp_path_factory.mktemp("killed4")
    out = reasonrl(*rl_args(root, tiny_base, "k"), faults=["kill-after-save=4"])
    assert out.returncode == -9, out.stderr
    return root / "k"


def copy_run(run, tmp_path, name="c"):
    shutil.copytree(run, tmp_path / name)
    return tmp_path / name


def tear(path, keep):
    path.write_bytes(path.read_bytes()[:keep(path.stat().st_size)])


CORRUPTIONS = {  # what a crash or a full disk can leave in the newest checkpoint
    "truncated-weights": lambda c: tear(c / "model.safetensors", lambda n: n // 2),
    "empty-weights": lambda c: tear(c / "model.safetensors", lambda n: 0),
    "truncated-trainer-state": lambda c: tear(c / "trainer_state.pt", lambda n: n // 3),
    "empty-trainer-state": lambda c: tear(c / "trainer_state.pt", lambda n: 0),
    "torn-config-json": lambda c: tear(c / "config.json", lambda n: n // 2),
}
FAST_CORRUPTIONS = ("truncated-weights",)  # the others run in the slow tier (a resume each)


@pytest.mark.parametrize("corruption", [c if c in FAST_CORRUPTIONS else pytest.param(c, marks=pytest.mark.slow)
                                        for c in CORRUPTIONS])
def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, tiny_base, straight, killed_at_4,
                                                                    corruption):
    run = copy_run(killed_at_4, tmp_path)
    CORRUPTIONS[corruption](run / "checkpoints" / "step-00000004")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "loss": 0.')  # and a torn last log line, as a kill mid-write leaves it
    out = ok(reasonrl(*rl_args(tmp_path, tiny_base, "c"), quiet=False))
    warnings = [line for line in out.stderr.splitlines() if "unreadable" in line]
    assert len(warnings) == 1 and "warning: rl: checkpoint" in warnings[0], out.stderr
    assert "step-00000004 is unreadable" in warnings[0] and "trying the previous one" in warnings[0]
    assert "(step 2)" in out.stderr  # resumed from the previous complete checkpoint
    assert (run / "checkpoints" / "corrupt-step-00000004").is_dir()  # kept aside for a post-mortem
    assert_same_as_straight(run, straight)


def test_a_full_disk_fails_with_one_line_and_the_rerun_resumes(tmp_path, tiny_base, straight):
    args = rl_args(tmp_path, tiny_base, "full")
    out = reasonrl(*args, faults=["enospc-at-save=4"])
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "No space left on device" in lines[0] and "step-00000004" in lines[0]
    ckpts = tmp_path / "full" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-00000002"]  # the failed one's temp dir is gone
    stale = ckpts / ".tmp-step-00000004-4242"  # what a hard crash mid-write leaves behind
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"\0" * 1024)
    # the re-run can write nothing while that temp dir takes the space: it must remove it first
    ok(reasonrl(*args, faults=["full-while-temps"]))
    assert_same_as_straight(tmp_path / "full", straight)


@pytest.mark.slow
def test_a_crash_before_the_first_checkpoint_logs_each_step_once(tmp_path, tiny_base, straight):
    args = (*rl_args(tmp_path, tiny_base, "early"), "checkpoint.every=100")  # no checkpoint until the end
    assert reasonrl(*args, faults=["kill-after-log=2"]).returncode == -9
    assert [r["step"] for r in rows(tmp_path / "early")] == [1, 2]
    ok(reasonrl(*args))
    assert_same_as_straight(tmp_path / "early", straight)  # the checkpoint cadence changes nothing trained
    assert rows(tmp_path / "early", "samples.jsonl") == rows(straight, "samples.jsonl")


def snapshot(run):
    return {str(p.relative_to(run)): (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file()}


def test_a_complete_run_is_not_redone(tiny_base, straight):
    before = snapshot(straight)
    out = ok(reasonrl(*rl_args(straight.parent, tiny_base, "straight"), quiet=False))
    assert "already complete" in out.stderr
    assert snapshot(straight) == before, "a re-run of a complete run wrote into it"


@pytest.mark.slow
def test_a_changed_config_is_refused_unless_allowed(tmp_path, tiny_base, straight, killed_at_4):
    run = copy_run(killed_at_4, tmp_path)
    shutil.rmtree(run / "checkpoints" / "step-00000004")  # two steps left to train
    before = snapshot(run)
    args = (*rl_args(tmp_path, tiny_base, "c"), "optim.lr=2e-3")
    out = reasonrl(*args)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1 and "optim.lr: 0.001 -> 0.002" in lines[0], out.stderr
    assert snapshot(run) == before, "a refused resume wrote into the run"
    out = ok(reasonrl(*args, "--allow-config-change", quiet=False))
    assert "changed config: optim.lr: 0.001 -> 0.002" in out.stderr
    assert not same_weights(run / "model", straight / "model")  # steps 3-4 trained at the new lr


PRETRAIN = (*TINY_PRETRAIN, "budget.steps=6", "eval.every=0", "checkpoint.every=1", "optim.max_consecutive_skips=3")


@pytest.mark.parametrize("skip", [True, pytest.param(False, marks=pytest.mark.slow)], ids=["skipped-steps", "unguarded"])
def test_a_diverged_run_stops_with_one_line_and_no_model(tmp_path, skip):
    out = reasonrl("pretrain", *PRETRAIN, f"run.dir={tmp_path}", "run.name=nan", f"optim.skip_nonfinite={skip}",
                   faults=["nan-loss-from=3"])
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert ("3 optimizer steps in a row" if skip else "contains NaN or inf") in lines[0]
    run = tmp_path / "nan"
    assert not (run / "model").exists() and not (run / "stage.json").exists()
    kept = sorted((run / "checkpoints").glob("step-*"))
    # skipped steps leave the weights as they were (checkpoints 3 and 4 hold step 2's); unguarded,
    # step 3's NaN weights are refused and so is every later checkpoint
    assert [p.name for p in kept] == (["step-00000003", "step-00000004"] if skip else ["step-00000001", "step-00000002"])
    for ckpt in kept:
        assert all(torch.isfinite(t).all() for t in weights(ckpt).values())


def test_a_warning_is_one_line_of_plain_text(capsys):
    from reasonrl.runlog import Run

    Run(None).warn("checkpoint [/tmp/x] is unreadable: " + "detail " * 60)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[/tmp/x]" in err


def test_a_run_recorded_before_a_later_key_is_the_same_run_at_its_original_value(tmp_path):
    import dataclasses

    import yaml

    from reasonrl.config import to_dict
    from reasonrl.errors import StageError
    from reasonrl.stages.rl import RLConfig
    from reasonrl.stages.runner import LATER_KEYS, check_config_change

    cfg = RLConfig()
    recorded = to_dict(cfg)
    for dotted in LATER_KEYS:
        section, _, key = dotted.partition(".")
        recorded[section].pop(key)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(recorded))
    assert check_config_change(tmp_path, cfg, "rl") == []
    other = dataclasses.replace(cfg, rl=dataclasses.replace(cfg.rl, sampling_seeds="prompt"))
    with pytest.raises(StageError, match="rl.sampling_seeds"):
        check_config_change(tmp_path, other, "rl")
    shared = dataclasses.replace(cfg, rl=dataclasses.replace(cfg.rl, share_prompt=True))
    with pytest.raises(StageError, match="rl.share_prompt"):
        check_config_change(tmp_path, shared, "rl")
