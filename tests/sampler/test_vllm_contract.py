"""The vLLM backend against a fake engine that speaks vLLM's API (no vLLM on CPU machines)."""

import sys
import types
from dataclasses import dataclass, field

import pytest
import torch

from reasonrl.sampler import generate

from tests.sampler.helpers import random_prompts, teacher_forced_logprobs, tiny_qwen2


@dataclass
class FakeSamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_tokens: int = 16
    stop_token_ids: list = field(default_factory=list)
    stop: list = field(default_factory=list)
    include_stop_str_in_output: bool = False
    ignore_eos: bool = False
    seed: int | None = None
    logprobs: int | None = None


@dataclass
class FakeLogprob:
    logprob: float


class FakeLLM:
    """Returns deterministic completions; samples come back in reverse index order, like an
    asynchronous engine may, so the backend must sort them."""

    def __init__(self, stop_after=None):
        self.calls = []
        self.stop_after = stop_after

    def generate(self, prompts, sampling_params, use_tqdm=True):
        self.calls.append((prompts, sampling_params))
        results = []
        for p in prompts:
            ids = p["prompt_token_ids"]
            outs = []
            for j in reversed(range(sampling_params.n)):
                length = sampling_params.max_tokens if self.stop_after is None else min(self.stop_after, sampling_params.max_tokens)
                toks = [(ids[-1] + 7 * j + t) % 500 + 2 for t in range(length)]
                reason = "length" if length == sampling_params.max_tokens else "stop"
                outs.append(types.SimpleNamespace(index=j, token_ids=toks, text=f"t{j}", finish_reason=reason,
                                                  logprobs=[{t: FakeLogprob(-1.5)} for t in toks]))
            results.append(types.SimpleNamespace(prompt_token_ids=ids, outputs=outs))
        return results


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.SamplingParams = FakeSamplingParams
    module.LLM = lambda model: FakeLLM()
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def test_rows_params_and_recomputed_logprobs(fake_vllm):
    hf = tiny_qwen2()
    engine = FakeLLM()
    prompts = random_prompts([3, 6])
    out = generate(hf, prompts, n=3, max_new_tokens=5, temperature=0.7, top_p=0.9, stop_token_ids=[4],
                   stop_strings=["!"], seed=9, engine=engine)
    sent, sp = engine.calls[0]
    assert [p["prompt_token_ids"] for p in sent] == prompts
    assert (sp.n, sp.temperature, sp.top_p, sp.top_k, sp.max_tokens) == (3, 0.7, 0.9, -1, 5)
    assert sp.stop_token_ids == [4] and sp.stop == ["!"] and sp.include_stop_str_in_output and sp.seed == 9
    assert out.group == [0, 0, 0, 1, 1, 1]
    # samples sorted by their index: sample j of prompt i starts at prompt[-1] + 7 j
    assert [c[0] for c in out.completion_ids] == [(prompts[i][-1] + 7 * j) % 500 + 2 for i in range(2) for j in range(3)]
    assert out.texts == ["t0", "t1", "t2"] * 2 and out.finish_reasons == ["length"] * 6
    assert out.stats["logprobs_source"] == "policy"
    for row in range(6):
        ref = teacher_forced_logprobs(hf, out.prompt_ids[row], out.completion_ids[row], 0.7)
        assert (torch.tensor(out.logprobs[row]) - ref).abs().max() <= 1e-4


def test_engine_logprobs_without_model_and_stop_reason(fake_vllm):
    out = generate(None, [[5, 6]], n=2, max_new_tokens=4, engine=FakeLLM(stop_after=2), top_k=5)
    assert out.logprobs == [[-1.5, -1.5]] * 2 and out.finish_reasons == ["stop", "stop"]
    assert out.stats["logprobs_source"] == "vllm"


def test_backend_vllm_builds_engine_from_path(fake_vllm):
    out = generate("some/model", [[5, 6]], max_new_tokens=3, backend="vllm")
    assert out.completion_lengths == [3]
    with pytest.raises(ValueError, match="engine"):
        generate(tiny_qwen2(), [[5, 6]], max_new_tokens=3, backend="vllm")


def test_missing_vllm_is_actionable(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails
    with pytest.raises(ImportError, match=r"reasonrl\[vllm\]"):
        generate("some/model", [[5, 6]], max_new_tokens=3, backend="vllm")


def test_import_is_light():
    import subprocess

    code = "import sys, reasonrl.sampler; print('transformers' in sys.modules, 'vllm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
