"""One RL step, for every algorithm in the table: sample groups, score, advantages, updates.

    ctx   = RLContext(rl=cfg.rl, policy=..., sampler=..., scorer=..., ...)   # built by the rl stage
    batch, stats = ALGORITHMS[ctx.rl.algorithm](ctx, step)

GRPO, GSPO and CISPO are critic-free siblings that differ only in their surrogate loss (the
`POLICY_LOSSES` table of rl/losses.py); PPO adds a value head and GAE (rl/ppo.py). Each step reads
only `ctx.rl` and what the context carries, never a stage's config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch

from reasonrl.compute import ComputeSection
from reasonrl.rl.config import RLSection
from reasonrl.rl.rollout import RolloutBatch, Scorer, collect, concat, select_rows
from reasonrl.tasks.prompts import PromptSpec
from reasonrl.rl.update import loss_mask, minibatch_updates, policy_forward, reference_logprobs
from reasonrl.sampler.backends import Sampler
from reasonrl.seeding import seed_for

StepStats = dict[str, float]
LossFn = Callable[[torch.nn.Module, dict], "tuple[torch.Tensor, dict[str, Any], torch.Tensor | None]"]


class Trainer(Protocol):
    """One optimizer step over the microbatches of a minibatch (reasonrl.train.loop.Trainer)."""

    def step(self, loss_fn: LossFn, microbatches: list[dict]) -> dict[str, float]: ...


@dataclass
class RLContext:
    """What a step needs; built once by the rl stage."""

    rl: RLSection
    seed: int
    grad_accum: int
    policy: torch.nn.Module  # what the optimizer trains (an ActorCritic for PPO)
    actor: torch.nn.Module  # what samples (the policy itself, or the ActorCritic's actor)
    reference: torch.nn.Module | None
    tokenizer: Any
    trainer: Trainer
    sampler: Sampler
    scorer: Scorer
    reward_spec: dict
    train_examples: list[dict]
    prompt: PromptSpec
    compute: ComputeSection | None = None  # device and bf16 autocast; None: fp32 where the policy lives

    def autocast(self):
        return contextlib.nullcontext() if self.compute is None else self.compute.autocast()

    def device(self) -> torch.device:
        return next(self.actor.parameters()).device


def sampling_options(rl: RLSection) -> dict:
    return {"max_new_tokens": rl.max_new_tokens, "temperature": rl.temperature, "top_p": rl.top_p,
            "stop_strings": list(rl.stop_strings) or None}


def prompt_batch(ctx: RLContext, step: int, round_: int) -> list[dict]:
    from reasonrl.data_utils import batch_indices

    P = ctx.rl.prompts_per_step
    index = batch_indices(len(ctx.train_examples), P, step * ctx.rl.max_sampling_rounds + round_, ctx.seed)
    return [ctx.train_examples[i] for i in index.tolist()]


def sample_round(ctx: RLContext, step: int, round_: int) -> RolloutBatch:
    from reasonrl.train.fsdp import gathered

    examples, seed = round_prompts(ctx, step, round_)
    with ctx.autocast(), gathered(ctx.actor):  # ranks decode different lengths: no collective inside
        batch = collect(ctx.sampler, ctx.scorer, ctx.tokenizer, examples, group_size=ctx.rl.group_size,
                        prompt=ctx.prompt, sampling=sampling_options(ctx.rl), seed=seed, reward_spec=ctx.reward_spec)
    return to_device(batch, ctx.device())


def round_prompts(ctx: RLContext, step: int, round_: int) -> tuple[list[dict], int | list[int]]:
    """This rank's prompts of one sampling round and their seed: one for the batch (`batch`), or one
    per prompt from its index in the global batch (`prompt`), so that a prompt's group is sampled
    alike whichever rank, and whatever else, shares its batch. Groups are never split over ranks."""
    from reasonrl.train.distributed import rank_slice

    examples = prompt_batch(ctx, step, round_)
    stream = f"sample{round_ + 1}"
    if ctx.rl.sampling_seeds == "batch":
        return examples, seed_for(ctx.seed, step, stream)
    seeds = [seed_for(ctx.seed, step, f"{stream}:prompt{j}") for j in range(len(examples))]
    mine = rank_slice(len(examples))
    return examples[mine], seeds[mine]


def advantages(rewards: torch.Tensor, group_size: int, mode: str) -> tuple[torch.Tensor, dict]:
    """Group-relative advantages of this rank's rows; under torchrun they come from every rank's
    rewards (an estimator may look past the group, e.g. reinforce_pp's batch whitening), and the
    metrics describe the global batch."""
    from reasonrl.rl.advantages import group_advantages
    from reasonrl.train import distributed

    if not distributed.active():
        return group_advantages(rewards, group_size, mode)
    everyone = torch.cat([r.to(rewards.device) for r in distributed.all_gather_objects(rewards.cpu())])  # (W*N,)
    adv, info = group_advantages(everyone, group_size, mode)
    return adv[distributed.rank_slice(len(everyone))], info


def to_device(batch: RolloutBatch, device: torch.device) -> RolloutBatch:
    """The batch's tensors where the policy lives (rollouts are padded on the CPU); a no-op there."""
    if batch.ids.device == device:
        return batch
    return dataclasses.replace(batch, ids=batch.ids.to(device), mask=batch.mask.to(device),
                               old_logp=batch.old_logp.to(device), rewards=batch.rewards.to(device))


def gather(ctx: RLContext, step: int) -> tuple[RolloutBatch, torch.Tensor, StepStats]:
    """Rollouts for one step. With dynamic sampling, groups whose rewards are all equal carry no
    signal and are dropped; sampling continues (up to max_sampling_rounds) until the batch is full."""
    rl, G = ctx.rl, ctx.rl.group_size
    kept: list[RolloutBatch] = []
    n_groups, zero_std, rounds = 0, [], 0
    for rounds in range(1, rl.max_sampling_rounds + 1):
        batch = sample_round(ctx, step, rounds - 1)
        _, info = advantages(batch.rewards, G, rl.advantage)
        zero_std.append(info["zero_std_frac"])
        if not rl.dynamic_sampling:
            kept, n_groups = [batch], len(batch) // G
            break
        groups = [g for g in range(len(batch) // G) if batch.rewards[g * G:(g + 1) * G].std() > 0]
        groups = groups[: rl.prompts_per_step - n_groups]
        if groups:
            kept.append(select_rows(batch, [g * G + i for g in groups for i in range(G)]))
            n_groups += len(groups)
        if n_groups >= rl.prompts_per_step:
            break
    if not kept:  # nothing informative this step: train on the last round (its advantages are 0)
        kept = [batch]
    batch = concat(kept, ctx.tokenizer.pad_token_id)
    adv, _ = advantages(batch.rewards, G, rl.advantage)
    return batch, adv, {"zero_std_frac": sum(zero_std) / len(zero_std), "sampling_rounds": float(rounds)}


def critic_free_step(ctx: RLContext, step: int) -> tuple[RolloutBatch, StepStats]:
    """GRPO / GSPO / CISPO: group-relative advantages, then mu passes of the surrogate loss."""
    batch, adv, extra = gather(ctx, step)
    t0 = time.perf_counter()
    with ctx.autocast():
        old, tis, mismatch = old_logprobs(ctx, batch, ctx.rl.minibatch_size or len(batch))
        t_old = time.perf_counter()
        ref = kl_reference_logprobs(ctx, batch, ctx.rl.minibatch_size or len(batch))
    t1 = time.perf_counter()
    extra.update(mismatch)
    tensors = {"ids": batch.ids, "mask": loss_mask(batch, ctx.rl.overlong_filter), "old": old,
               "adv": adv, "ref": ref, "tis": tis, "prompt_len": shared_prompt_lengths(ctx, batch)}
    stats = minibatch_updates(ctx, step, tensors, lambda model, mb: autocast_loss(ctx, surrogate_loss, model, mb))
    ctx.sampler.sync(ctx.actor)
    t2 = time.perf_counter()
    extra.update({"time/old_logprobs": t_old - t0, "time/ref": t1 - t_old, "time/update": t2 - t1,
                  "tokens_per_s/train": float(batch.mask.sum()) * ctx.rl.mu / max(t2 - t1, 1e-9)})
    return batch, {**stats, **extra}


def recomputes_old_logprobs(ctx: RLContext) -> bool:
    """The trainer's own sampler records exactly the log-probs the loss recomputes, so they are
    reused as they are; any other engine's are recomputed (they disagree numerically)."""
    return ctx.rl.recompute_logprobs or not getattr(ctx.sampler, "trainer_logprobs", False)


def old_logprobs(ctx: RLContext, batch: RolloutBatch, chunk_rows: int
                 ) -> tuple[torch.Tensor, torch.Tensor | None, StepStats]:
    """(old log-probs for the ratio, TIS weights or None, mismatch metrics). Recomputed ones come
    from the policy before any update; the sampler's then only enter through the TIS weights."""
    from reasonrl.rl.tis import tis_weights

    if not recomputes_old_logprobs(ctx):
        return batch.old_logp, None, {}
    trainer = reference_logprobs(ctx.actor, batch.ids, batch.mask, ctx.rl.temperature, chunk_rows, ctx.rl.logprobs,
                                 shared_prompt_lengths(ctx, batch))
    weights, metrics = tis_weights(trainer, batch.old_logp, batch.mask, ctx.rl.tis_cap)
    return trainer, weights, metrics


def kl_reference_logprobs(ctx: RLContext, batch: RolloutBatch, chunk_rows: int) -> torch.Tensor | None:
    """The reference's log-probs (N, L-1), or None when beta = 0: the KL term is then multiplied by
    0 in every loss (and PPO's reward), so its forward is skipped even if a reference is held."""
    if ctx.rl.beta == 0:
        return None
    return reference_logprobs(ctx.reference, batch.ids, batch.mask, ctx.rl.temperature, chunk_rows, ctx.rl.logprobs,
                              shared_prompt_lengths(ctx, batch))


def shared_prompt_lengths(ctx: RLContext, batch: RolloutBatch) -> torch.Tensor | None:
    """(N,) prompt lengths when rl.share_prompt is on (rows of one group then share a prompt pass)."""
    from reasonrl.rl.logprobs import prompt_lengths

    return prompt_lengths(batch.mask) if ctx.rl.share_prompt else None


def autocast_loss(ctx: RLContext, loss_fn: Callable, model, mb: dict):
    """The forward and loss under the context's autocast; the trainer's backward runs outside it,
    as torch.autocast recommends."""
    with ctx.autocast():
        return loss_fn(model, mb, ctx.rl)


def surrogate_loss(model, mb: dict, rl: RLSection) -> tuple[torch.Tensor, dict[str, Any], torch.Tensor | None]:
    from reasonrl.rl.losses import POLICY_LOSSES

    logp, entropy, load = policy_forward(model, mb["ids"], mb["mask"], rl.temperature, rl.logprobs, mb.get("prompt_len"))
    loss, metrics = POLICY_LOSSES[rl.algorithm](
        logp, mb["old"], mb["adv"], mb["mask"], **loss_options(rl),
        ref_logp=mb["ref"], num_tokens=mb["num_tokens"] if rl.aggregation == "token_mean" else None,
        is_weights=mb.get("tis"))
    tokens = mb["mask"].sum().clamp(min=1)
    metrics["entropy"] = (entropy * mb["mask"]).sum() / tokens
    return loss, metrics, load


def loss_options(rl: RLSection) -> dict[str, Any]:
    """The config's loss keys; clip ranges left null fall to the algorithm's published defaults."""
    return {"beta": rl.beta, "aggregation": rl.aggregation, "max_len": rl.max_new_tokens, **rl.clip_options()}


def ppo_step(ctx: RLContext, step: int) -> tuple[RolloutBatch, StepStats]:
    """Sample, score, estimate values, GAE, then mu passes of clipped actor + value updates."""
    from reasonrl.rl.ppo import ppo_advantages, ppo_loss

    batch = sample_round(ctx, step, 0)
    t0 = time.perf_counter()
    chunk = ctx.rl.minibatch_size or len(batch)
    with torch.no_grad(), ctx.autocast():
        values = torch.cat([ctx.policy.values(c)[:, :-1] for c in batch.ids.split(chunk)]).float()
        old, tis, mismatch = old_logprobs(ctx, batch, chunk)
        ref = kl_reference_logprobs(ctx, batch, chunk)
    t1 = time.perf_counter()
    # the KL-in-reward and the ratio both use the trainer's old log-probs when they were recomputed
    adv, returns = ppo_advantages(ctx.rl, dataclasses.replace(batch, old_logp=old), values, ref)
    tensors = {"ids": batch.ids, "mask": batch.mask, "old": old, "adv": adv, "ret": returns, "old_v": values,
               "tis": tis, "prompt_len": shared_prompt_lengths(ctx, batch)}
    stats = minibatch_updates(ctx, step, tensors, lambda model, mb: autocast_loss(ctx, ppo_loss, model, mb))
    ctx.sampler.sync(ctx.actor)
    t2 = time.perf_counter()
    return batch, {**stats, **mismatch, "time/ref": t1 - t0, "time/update": t2 - t1,
                   "tokens_per_s/train": float(batch.mask.sum()) * ctx.rl.mu / max(t2 - t1, 1e-9)}


# algorithm name -> step; the names are the `rl.algorithm` Literal of rl/config.py
ALGORITHMS: dict[str, Callable[[RLContext, int], tuple[RolloutBatch, StepStats]]] = {
    "grpo": critic_free_step,
    "gspo": critic_free_step,
    "gspo_token": critic_free_step,
    "cispo": critic_free_step,
    "ppo": ppo_step,
}
