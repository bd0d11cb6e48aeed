"""The `rl` config section: the only configuration the algorithm reads. Closed sets are
`Literal`s (checked when the config loads, with the closest valid value suggested), numbers carry
their ranges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reasonrl.config import FieldProblem, opt
from reasonrl.sampler.backends import SamplerKind

Algorithm = Literal["grpo", "gspo", "gspo_token", "cispo", "ppo"]
Advantage = Literal["grpo", "dr_grpo", "rloo", "reinforce_pp"]
Aggregation = Literal["seq_mean_token_mean", "token_mean", "constant"]
LogprobPath = Literal["completion", "full"]
SamplingSeeds = Literal["batch", "prompt"]


@dataclass
class RLSection:
    algorithm: Algorithm = opt("grpo", "grpo (token-level clipped ratio; Dr. GRPO / DAPO via the keys below), gspo "
                               "(sequence-level ratio), gspo_token, cispo (clipped, stop-gradient IS weight) or ppo "
                               "(value head + GAE)")
    steps: int = opt(100, "RL steps (one rollout batch each)", ge=1)
    prompts_per_step: int = opt(16, "prompts per step", ge=1)
    group_size: int = opt(8, "completions sampled per prompt (G)", ge=1)
    advantage: Advantage = opt("grpo", "group-relative baseline: grpo (mean/std), dr_grpo (mean only), rloo "
                               "(leave-one-out), reinforce_pp (group mean, batch whitening)")
    aggregation: Aggregation = opt("seq_mean_token_mean", "seq_mean_token_mean (TRL grpo) | token_mean (DAPO) | "
                                   "constant (Dr. GRPO: sum over tokens / max_new_tokens)")
    eps_low: float | None = opt(None, "lower clip range of the ratio (null: the algorithm's own, grpo/ppo 0.2, gspo "
                                "3e-4, cispo 1.0 = no lower bound on the IS weight)", ge=0)
    eps_high: float | None = opt(None, "upper clip range of the ratio (null: grpo/ppo 0.2, gspo 4e-4, cispo 4.0 = "
                                 "weight <= 5; DAPO clip-higher: 0.28)", ge=0)
    beta: float = opt(0.0, "k3 KL coefficient to the reference (0: no reference model is kept)", ge=0)
    ref_reset_every: int = opt(0, "reset the reference to the current policy every N steps (0: never)", ge=0)
    mu: int = opt(1, "passes over each rollout batch", ge=1)
    minibatch_size: int = opt(0, "rows per optimizer step (0: the whole rollout batch)", ge=0)
    max_new_tokens: int = opt(64, "generation budget per completion", ge=1)
    temperature: float = opt(1.0, "rollout sampling temperature", gt=0)
    top_p: float = opt(1.0, "rollout nucleus sampling", gt=0, le=1)
    stop_strings: list[str] = opt(factory=lambda: ["</answer>"], help="strings that end a completion (eos always does)")
    sampler: SamplerKind = opt("torch", "rollout engine: torch (built in) or vllm (extra: [vllm], CUDA only; "
                               "not yet verified on GPU hardware)")
    recompute_logprobs: bool = opt(False, "recompute the old log-probs with the training model even when the sampler "
                                   "is the trainer's own (always done for any other sampler, e.g. vllm)")
    tis_cap: float | None = opt(2.0, "truncated importance sampling between sampler and trainer log-probs: each "
                                "token's surrogate is weighted by min(pi_trainer / pi_sampler, tis_cap) when old "
                                "log-probs are recomputed (null: no correction; the mismatch is logged either way)",
                                gt=0)
    sampling_seeds: SamplingSeeds = opt("batch", "batch (one random stream for the step's whole batch) or prompt (one "
                                        "per prompt, from seed, step and the prompt's index in the global batch: the "
                                        "same rollouts under any number of ranks; required under torchrun)")
    dynamic_sampling: bool = opt(False, "DAPO: drop groups whose rewards are all equal and sample more")
    max_sampling_rounds: int = opt(3, "cap on sampling rounds per step with dynamic sampling", ge=1)
    overlong_filter: bool = opt(False, "DAPO: truncated completions get no loss")
    warn_zero_spread_steps: int = opt(5, "warn once when every group's rewards are equal this many steps in a row "
                                      "(0: never)", ge=0)
    logprobs: LogprobPath = opt("completion", "how training scores completions: completion (the head only at completion "
                                "positions, in chunks; native models skip MTP) or full (logits at every position: "
                                "the reference path, equal within fp32 rounding)")
    share_prompt: bool = opt(False, "compute each group's prompt once in training's forwards (policy, old and "
                             "reference log-probs; its G completions attend to its keys/values): the same log-probs "
                             "and gradients within fp32 rounding, fewer FLOPs the longer the prompt (completion path)")
    gamma: float = opt(1.0, "PPO: discount", ge=0, le=1)
    lam: float = opt(0.95, "PPO: GAE lambda", ge=0, le=1)
    vf_coef: float = opt(0.5, "PPO: value loss weight", ge=0)
    value_clip: float = opt(0.2, "PPO: value clipping range", ge=0)

    def __post_init__(self) -> None:
        from reasonrl.sampler import backends

        problem = backends.sampler_problem(self.sampler)
        if problem:
            raise FieldProblem("sampler", problem)

    def distributed_problem(self, world: int) -> str | None:
        """Why this section cannot run over `world` data-parallel ranks, or None."""
        if world <= 1:
            return None
        if self.sampling_seeds != "prompt":
            return (f"WORLD_SIZE={world} needs rl.sampling_seeds=prompt (one random stream per prompt, so the run "
                    "is the same under any number of ranks); set rl.sampling_seeds=prompt")
        for key in ("prompts_per_step", "minibatch_size"):
            if getattr(self, key) % world:
                return (f"rl.{key}={getattr(self, key)} does not split over WORLD_SIZE={world} ranks: use a "
                        f"multiple of {world}")
        unsupported = {"rl.dynamic_sampling=true": self.dynamic_sampling, "rl.sampler=vllm": self.sampler == "vllm"}
        for what, on in unsupported.items():
            if on:
                return f"{what} is not supported under torchrun (WORLD_SIZE={world}) yet: run it as one process"
        return None

    def clip_options(self) -> dict[str, float]:
        """eps_low / eps_high as set; those left null fall to the loss function's own defaults."""
        return {k: getattr(self, k) for k in ("eps_low", "eps_high") if getattr(self, k) is not None}

    def minibatches_per_pass(self) -> int:
        rows = self.prompts_per_step * self.group_size
        return -(-rows // (self.minibatch_size or rows))

    def optimizer_steps(self) -> int:
        """Optimizer updates of the whole run (the learning-rate schedule's length)."""
        return self.steps * self.mu * self.minibatches_per_pass()
