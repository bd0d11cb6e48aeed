"""Sampler objects: the torch sampler equals `generate`, the vLLM sampler pushes weights on sync."""

import torch

from reasonrl.sampler import generate
from reasonrl.sampler.backends import TorchSampler, VLLMSampler, make_sampler
from tests.sampler.helpers import random_prompts, tiny_qwen2
from tests.sampler.test_vllm_contract import FakeLLM, fake_vllm  # noqa: F401 (fixture)


def test_torch_sampler_equals_generate_and_restores_training_mode():
    hf = tiny_qwen2()
    prompts = random_prompts([4, 7])
    expected = generate(hf, prompts, n=2, max_new_tokens=6, seed=3)
    hf.train()
    sampler = make_sampler("torch", hf, None)
    got = sampler.generate(prompts, n=2, seed=3, max_new_tokens=6)
    assert got.completion_ids == expected.completion_ids and got.logprobs == expected.logprobs
    assert hf.training, "the sampler must leave the policy in the mode it found it"
    sampler.sync(hf)  # same module: nothing to copy
    assert isinstance(sampler, TorchSampler) and sampler.policy is hf


class FakeEngineWithWeights(FakeLLM):
    def __init__(self):
        super().__init__()
        self.pushed = []

    def load_weights(self, weights):
        self.pushed.append({name: tensor.clone() for name, tensor in weights})


def test_vllm_sampler_syncs_the_current_weights(fake_vllm):  # noqa: F811
    hf = tiny_qwen2()
    engine = FakeEngineWithWeights()
    sampler = make_sampler("vllm", hf, None, engine=engine)
    assert isinstance(sampler, VLLMSampler)
    out = sampler.generate(random_prompts([3]), n=2, seed=1, max_new_tokens=4)
    assert out.group == [0, 0] and engine.calls
    with torch.no_grad():
        next(hf.parameters()).add_(1.0)  # an "update"
    sampler.sync(hf)
    pushed = engine.pushed[-1]
    assert set(pushed) == set(hf.state_dict())
    name, param = next(iter(hf.state_dict().items()))
    assert torch.equal(pushed[name], param), "sync must push the weights as they are after the update"
