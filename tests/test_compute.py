"""The `compute` section: device and dtype keys, refused combinations in one line (exit 2), the CPU
path unchanged, and bf16 autocast with fp32 master weights on a GPU (`gpu`-marked: skipped without)."""

import pytest
import torch

from reasonrl.compute import ComputeSection, compute_problem
from tests.stages.conftest import run_cli


@pytest.mark.parametrize("device,dtype,allow,cuda,key", [
    ("cuda", "fp32", False, False, "device"),
    ("cpu", "bf16", False, True, "dtype"),
    ("auto", "bf16", False, False, "dtype"),
])
def test_bad_combinations_name_their_key(device, dtype, allow, cuda, key):
    name, problem = compute_problem(device, dtype, allow, cuda)
    assert name == key and problem and "\n" not in problem


@pytest.mark.parametrize("device,dtype,allow,cuda", [
    ("auto", "fp32", False, False), ("cpu", "fp32", False, True), ("cpu", "bf16", True, False),
    ("auto", "bf16", False, True), ("cuda", "bf16", False, True),
])
def test_good_combinations(device, dtype, allow, cuda):
    assert compute_problem(device, dtype, allow, cuda)[1] is None


def test_defaults_are_the_cpu_path_unchanged(monkeypatch):
    import reasonrl.compute as compute

    monkeypatch.setattr(compute, "cuda_available", lambda: False)
    c = ComputeSection()
    assert (c.device, c.dtype, c.resolved_device()) == ("auto", "fp32", "cpu")
    with c.autocast():  # fp32: no autocast at all
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_explicitly_allowed_cpu_bf16_autocasts():
    c = ComputeSection(device="cpu", dtype="bf16", allow_cpu_bf16=True)
    with c.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize("override", ["compute.device=cuda", "compute.dtype=bf16"])
def test_cli_refuses_in_one_line_exit_2_before_writing(tmp_path, override):
    out = run_cli("rl", "model.path=nowhere", override, f"run.dir={tmp_path}", "run.name=x", check=False)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert f"'{override.split('=')[0]}'" in out.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.gpu
def test_bf16_autocast_keeps_fp32_master_weights_on_cuda():
    from reasonrl.model import create
    from reasonrl.rl.logprobs import sequence_logprobs

    c = ComputeSection(device="cuda", dtype="bf16")
    model = create("tiny", seed=0, vocab_size=64).to(c.torch_device()).train()
    ids = torch.randint(2, 64, (2, 12), device="cuda")
    mask = torch.ones(2, 11, device="cuda")
    with c.autocast():
        out = sequence_logprobs(model, ids, mask, 1.0, "completion")
    assert out.logp.dtype == torch.float32  # log-probs in fp32 for the ratio
    (-out.logp.sum()).backward()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(p.grad.dtype == torch.float32 for p in model.parameters() if p.grad is not None)
