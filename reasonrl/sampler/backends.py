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

    # its log-probs are the trainer's own (same module, same log_softmax(logits / T)): the RL step
    # reuses them instead of recomputing them (see rl/step.py, old_logprobs)
    trainer_logprobs = True

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
    """A colocated vLLM engine. Its rollouts carry the engine's own log-probs (the sampler's
    distribution): the RL step recomputes them with the policy and corrects the difference with
    truncated importance sampling (rl/tis.py). Status: contract-tested against a fake engine on
    CPU, not yet verified on GPU hardware."""

    trainer_logprobs = False

    def __init__(self, policy: Any, tokenizer: Any, engine: Any):
        self.policy, self.tokenizer, self.engine = policy, tokenizer, engine

    def generate(self, prompts: list[str], *, n: int, seed: int, **sampling: Any) -> Rollouts:
        from reasonrl.sampler.engine import generate

        # model=None: keep the engine's log-probs (a policy here would replace them by its own)
        return generate(None, prompts, n=n, seed=seed, tokenizer=self.tokenizer, engine=self.engine, **sampling)

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


def sampler_problem(kind: SamplerKind) -> str | None:
    """Why this machine cannot run sampler `kind`, or None; checked when the config loads, so a
    stage (or a whole pipeline) is refused with one line before anything is written."""
    if kind != "vllm":
        return None
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is None:
        return "vllm needs vLLM (CUDA machines only): pip install 'reasonrl[vllm]', or use rl.sampler=torch"
    if not torch.cuda.is_available():
        return "vllm needs a CUDA device and none is visible: use rl.sampler=torch on this machine"
    return None


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
            # processed log-probs are after temperature, the same quantity the trainer recomputes
            # (before top-p only when top_p = 1; see docs/rl.md)
            engine = vllm.LLM(model=path, enable_sleep_mode=False, logprobs_mode="processed_logprobs")
        return VLLMSampler(policy, tokenizer, engine)
    raise ValueError(f"unknown sampler {kind!r}: use 'torch' or 'vllm'")
