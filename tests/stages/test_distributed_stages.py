"""`torchrun --nproc_per_node 2 -m reasonrl <stage>` on CPU (gloo, one thread per rank): the same
run as one process, resumable across rank counts, refusals in one line before any write."""

import json
import os
import re
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.stages.conftest import REPO, run_cli
from tests.stages.test_rl import TOY, qwen_dir  # noqa: F401 (a fixture)

GRPO = (*TOY, "rl.sampling_seeds=prompt", "rl.beta=0.04", "samples_every=0", "eval.n_examples=2",
        "optim.lr=1e-3", "rl.aggregation=token_mean")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args, nproc=2, module="reasonrl", check=True, timeout=600):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr",
           "127.0.0.1", "--master_port", str(free_port()), "-m", module, *args, "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=timeout, env=env)
    if check and out.returncode != 0:
        raise AssertionError(f"torchrun {' '.join(args)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out


def weights(run):
    return load_file(str(run / "model" / "model.safetensors"))


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(a, b, keys=("loss", "reward/mean", "kl")):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-4, atol=1e-5, msg=name)
    for ra, rb in zip(metrics(a), metrics(b), strict=True):
        for key in keys:
            if key in ra:
                assert ra[key] == pytest.approx(rb[key], rel=1e-4, abs=1e-6), (key, ra["step"])


@pytest.mark.parametrize("strategy", ["ddp", pytest.param("fsdp", marks=pytest.mark.slow)])
def test_grpo_on_two_ranks_is_the_one_process_run(tmp_path, tiny_base, strategy):
    args = (*GRPO, f"model.path={tiny_base}", f"run.dir={tmp_path}", "rl.steps=2", "checkpoint.every=10")
    run_cli("rl", *args, "run.name=one")
    torchrun("rl", *args, "run.name=two", f"run.strategy={strategy}")
    one, two = tmp_path / "one", tmp_path / "two"
    assert_same_run(one, two)
    assert any(r.get("loss", 0) != 0 for r in metrics(one)), "no learning signal: the comparison proves nothing"
    start = load_file(str(tiny_base / "model.safetensors"))
    assert any(not torch.equal(start[k], v) for k, v in weights(two).items()), "2 ranks did not train"


@pytest.mark.parametrize("override, message", [
    ("rl.sampling_seeds=batch", "set rl.sampling_seeds=prompt"),
    ("rl.prompts_per_step=3", "rl.prompts_per_step=3 does not split over WORLD_SIZE=2"),
])
def test_bad_distributed_rl_config_fails_in_one_line_before_writing(tmp_path, tiny_base, override, message):
    out = torchrun("rl", *GRPO, override, f"model.path={tiny_base}", f"run.dir={tmp_path}", "run.name=bad",
                   check=False)
    assert out.returncode != 0 and re.search(r"exitcode\s*:\s*2\b", out.stderr), out.stderr[-2000:]  # each rank: 2
    errors = [line for line in out.stderr.splitlines() if line.startswith("reasonrl:")]
    assert errors and all(message in line for line in errors), out.stderr[-2000:]
    assert len(set(errors)) == 1  # the same one line from each rank
    assert not (tmp_path / "bad").exists()


def checkpoints(run):
    return sorted(p.name for p in (run / "checkpoints").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_checkpoints_resume_from_two_ranks_to_one_and_back(tmp_path, tiny_base, strategy):
    """With fsdp: a distributed checkpoint read by one process, whose plain checkpoint FSDP then reshards."""
    args = (*GRPO, f"model.path={tiny_base}", f"run.dir={tmp_path}", "rl.steps=3", "checkpoint.every=1",
            "checkpoint.keep_last=0")
    run_cli("rl", *args, "run.name=straight")
    hop = (*args, "run.name=hop", f"run.strategy={strategy}")
    killed = torchrun("kill-after-save=1", "--", "rl", *hop, module="tests.stages.faults", check=False)
    assert killed.returncode != 0 and checkpoints(tmp_path / "hop") == ["step-00000001"]
    assert (tmp_path / "hop" / "checkpoints" / "step-00000001" / "dcp").is_dir() == (strategy == "fsdp")
    one = subprocess.run([sys.executable, "-m", "tests.stages.faults", "kill-after-save=2", "--", "rl", *hop,
                          "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert one.returncode != 0 and checkpoints(tmp_path / "hop") == ["step-00000001", "step-00000002"]
    torchrun("rl", *hop)
    assert_same_run(tmp_path / "straight", tmp_path / "hop")


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_a_killed_rank_resumes_from_the_last_complete_checkpoint(tmp_path, tiny_base, strategy):
    args = (*GRPO, f"model.path={tiny_base}", f"run.dir={tmp_path}", "rl.steps=3", "checkpoint.every=1")
    run_cli("rl", *args, "run.name=straight")
    crash = (*args, "run.name=crash", f"run.strategy={strategy}")
    killed = torchrun("kill-rank1-after-update=2", "--", "rl", *crash, module="tests.stages.faults", check=False,
                      timeout=300)
    assert killed.returncode != 0
    run = tmp_path / "crash"
    assert checkpoints(run) == ["step-00000001"]  # step 2 never finished on every rank: nothing of it saved
    assert all((run / "checkpoints" / name / "COMPLETE").is_file() for name in checkpoints(run))
    torchrun("rl", *crash)
    assert [r["step"] for r in metrics(run)] == [1, 2, 3]
    assert_same_run(tmp_path / "straight", run)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_sft_on_two_ranks_is_the_one_process_run(tmp_path, tiny_base, strategy):
    from tests.stages.test_sft import _pairs

    data = tmp_path / "sft.jsonl"
    _pairs(data)
    args = (f"model.path={tiny_base}", f"data.path={data}", f"run.dir={tmp_path}", "data.batch_size=4",
            "data.seq_len=48", "budget.steps=3", "run.threads=1", "checkpoint.every=10")
    run_cli("sft", *args, "run.name=one")
    torchrun("sft", *args, "run.name=two", f"run.strategy={strategy}")
    assert_same_run(tmp_path / "one", tmp_path / "two", keys=("loss", "ce_loss", "grad_norm"))


@pytest.mark.slow
def test_fsdp_grpo_on_a_transformers_policy_is_the_one_process_run(tmp_path, qwen_dir):
    """Qwen2 under FSDP, the prompt shared across each group (the KV-cache path of suffix_hidden)."""
    args = (*GRPO, f"model.path={qwen_dir}", f"run.dir={tmp_path}", "rl.steps=2", "checkpoint.every=1",
            "rl.share_prompt=true")
    run_cli("rl", *args, "run.name=one")
    torchrun("rl", *args, "run.name=two", "run.strategy=fsdp")
    assert_same_run(tmp_path / "one", tmp_path / "two")
    assert (tmp_path / "two" / "checkpoints" / "step-00000002" / "dcp").is_dir()
    assert any(r.get("loss", 0) != 0 for r in metrics(tmp_path / "one"))


@pytest.mark.slow
def test_fsdp_pretrain_with_moe_and_mtp_is_the_one_process_run(tmp_path):
    """Pretraining trains every part FSDP shards: MoE experts (with the bias update from the
    all-reduced load), MTP, the tied-free head."""
    from tests.stages.conftest import TINY_PRETRAIN

    args = (*TINY_PRETRAIN, f"run.dir={tmp_path}", "budget.steps=3", "eval.every=0", "checkpoint.every=2",
            "run.threads=1")
    run_cli("pretrain", *args, "run.name=one")
    torchrun("pretrain", *args, "run.name=two", "run.strategy=fsdp")
    assert_same_run(tmp_path / "one", tmp_path / "two", keys=("loss", "ce_loss", "mtp_loss", "grad_norm"))


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_ppo_with_its_critic_on_two_ranks_is_the_one_process_run(tmp_path, tiny_base, strategy):
    """GAE advantages whitened over the global batch, the value loss a global token mean; under
    fsdp the actor, the critic and the KL reference are each sharded. Resumed from a checkpoint."""
    args = (*GRPO, "rl.algorithm=ppo", f"model.path={tiny_base}", f"run.dir={tmp_path}", "rl.steps=2",
            "checkpoint.every=1")
    run_cli("rl", *args, "run.name=one")
    two = (*args, "run.name=two", f"run.strategy={strategy}")
    killed = torchrun("kill-after-save=1", "--", "rl", *two, module="tests.stages.faults", check=False)
    assert killed.returncode != 0 and checkpoints(tmp_path / "two") == ["step-00000001"]
    torchrun("rl", *two)
    assert_same_run(tmp_path / "one", tmp_path / "two", keys=("loss", "reward/mean", "kl", "value_loss"))
    critic = load_file(str(tmp_path / "two" / "model" / "critic.safetensors"))
    for name, value in load_file(str(tmp_path / "one" / "model" / "critic.safetensors")).items():
        torch.testing.assert_close(critic[name], value, rtol=1e-4, atol=1e-5, msg=name)
