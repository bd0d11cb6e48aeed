"""Sampler objects: what an RL loop holds to turn prompts into rollouts, whatever engine runs them.

    sampler = make_sampler("torch", policy, tokenizer)     # or "vllm" (extra: [vllm], CUDA only)
    rollouts = sampler.generate(prompts, n=8, seed=s, max_new_tokens=64, temperature=1.0)
    sampler.sync(policy)                                   # after every optimizer update

The torch sampler decodes with the policy itself, so `sync` has nothing to copy. An inference
engine holds its own copy of the weights, which `sync` refreshes; a trainer that uses one must
not trust its log-probs blindly (engines and trainers disagree numerically).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from reasonrl.sampler.batching import Rollouts

SamplerKind = Literal["torch", "vllm"]


class Sampler(Protocol):
    def generate(self, prompts: list[str], *, n: int, seed: int, **sampling: Any) -> Rollouts:
        """`n` completions per prompt, rows prompt-major (see Rollouts)."""

    def sync(self, policy: Any) -> None:
        """Make the next `generate` sample from `policy`'s current weights."""


class TorchSampler:
    """The built-in sampler (KV caches, latent cache for MLA) running the policy in place."""

    def __init__(self, policy: Any, tokenizer: Any):
        self.policy, self.tokenizer = policy, tokenizer

    def generate(self, prompts: list[str], *, n: int, seed: int, **sampling: Any) -> Rollouts:
        import torch

        from reasonrl.sampler.engine import generate

        was_training = self.policy.training
        self.policy.eval()
        try:
            with torch.no_grad():
                return generate(self.policy, prompts, n=n, seed=seed, tokenizer=self.tokenizer, **sampling)
        finally:
            self.policy.train(was_training)

    def sync(self, policy: Any) -> None:
        self.policy = policy  # same module, updated in place: nothing to copy


class VLLMSampler:
    """A colocated vLLM engine; log-probs are recomputed by the policy (see sampler/vllm.py).
    Status: contract-tested against a fake engine on CPU, not yet verified on GPU hardware."""

    def __init__(self, policy: Any, tokenizer: Any, engine: Any):
        self.policy, self.tokenizer, self.engine = policy, tokenizer, engine

    def generate(self, prompts: list[str], *, n: int, seed: int, **sampling: Any) -> Rollouts:
        from reasonrl.sampler.engine import generate

        return generate(self.policy, prompts, n=n, seed=seed, tokenizer=self.tokenizer, engine=self.engine,
                        **sampling)

    def sync(self, policy: Any) -> None:
        """Push the policy's weights into the engine's model (named tensors, no full model copy)."""
        self.policy = policy
        load = getattr(self.engine, "load_weights", None)
        if load is None:  # vllm.LLM: the model lives behind the engine's executor
            runner = self.engine.llm_engine.model_executor.driver_worker.model_runner
            load = runner.model.load_weights
        load(weights=list(_inner(policy).state_dict().items()))


def _inner(policy: Any) -> Any:
    return getattr(policy, "hf", policy)  # HFPolicy wraps the transformers model as .hf


def make_sampler(kind: SamplerKind, policy: Any, tokenizer: Any, engine: Any = None) -> Sampler:
    if kind == "torch":
        return TorchSampler(policy, tokenizer)
    if kind == "vllm":
        if engine is None:
            from reasonrl.sampler.vllm import import_vllm

            vllm = import_vllm()
            path = getattr(getattr(_inner(policy), "config", None), "_name_or_path", None)
            if not path:
                raise ValueError("rl.sampler=vllm needs a policy loaded from a model directory")
            engine = vllm.LLM(model=path, enable_sleep_mode=False)
        return VLLMSampler(policy, tokenizer, engine)
    raise ValueError(f"unknown sampler {kind!r}: use 'torch' or 'vllm'")
