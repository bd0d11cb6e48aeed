"""One GRPO / DAPO step: sample groups, score, group-relative advantages, clipped updates.

    batch  = gather(ctx, step)            # rollouts (+ DAPO dynamic sampling), rewards, advantages
    stats  = update(ctx, batch, adv, step)  # mu passes x minibatches of clipped surrogate + k3 KL
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from reasonrl.rl.rollout import RolloutBatch, collect, concat, select_rows


@dataclass
class RLContext:
    """What a step needs; built once by the stage."""

    cfg: Any  # RLConfig
    policy: torch.nn.Module
    reference: torch.nn.Module | None
    tokenizer: Any
    trainer: Any
    runtime: Any  # RewardRuntime
    train_examples: list[dict]
    prompt_format: str
    critic: Any = None  # PPO only


def sampling_options(cfg) -> dict:
    return {"max_new_tokens": cfg.rl.max_new_tokens, "temperature": cfg.rl.temperature, "top_p": cfg.rl.top_p,
            "stop_strings": list(cfg.rl.stop_strings) or None}


def prompt_batch(ctx: RLContext, step: int, round_: int) -> list[dict]:
    from reasonrl.data_utils import batch_indices

    P = ctx.cfg.rl.prompts_per_step
    index = batch_indices(len(ctx.train_examples), P, step * ctx.cfg.rl.max_sampling_rounds + round_, ctx.cfg.run.seed)
    return [ctx.train_examples[i] for i in index.tolist()]


def gather(ctx: RLContext, step: int) -> tuple[RolloutBatch, torch.Tensor, dict[str, float]]:
    """Rollouts for one step. With dynamic sampling, groups whose rewards are all equal carry no
    signal and are dropped; sampling continues (up to max_sampling_rounds) until the batch is full."""
    from reasonrl.rl.advantages import group_advantages
    from reasonrl.train.loop import seed_for

    rl, G = ctx.cfg.rl, ctx.cfg.rl.group_size
    kept: list[RolloutBatch] = []
    n_groups, zero_std, rounds = 0, [], 0
    for rounds in range(1, rl.max_sampling_rounds + 1):
        batch = collect(ctx.policy, ctx.tokenizer, prompt_batch(ctx, step, rounds - 1), group_size=G,
                        prompt_format=ctx.prompt_format, prefill=ctx.cfg.data.prefill,
                        sampling=sampling_options(ctx.cfg), seed=seed_for(ctx.cfg.run.seed, step, f"sample{rounds}"),
                        runtime=ctx.runtime, reward_spec=ctx.cfg.rewards)
        _, info = group_advantages(batch.rewards, G, rl.advantage)
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
    adv, _ = group_advantages(batch.rewards, G, rl.advantage)
    return batch, adv, {"zero_std_frac": sum(zero_std) / len(zero_std), "sampling_rounds": float(rounds)}


def loss_mask(ctx: RLContext, batch: RolloutBatch) -> torch.Tensor:
    """Completion-token mask; DAPO overlong filtering masks truncated samples out entirely."""
    if not ctx.cfg.rl.overlong_filter:
        return batch.mask
    keep = torch.tensor([not t for t in batch.truncated], dtype=batch.mask.dtype)
    return batch.mask * keep[:, None]


@torch.no_grad()
def reference_logprobs(ctx: RLContext, ids: torch.Tensor) -> torch.Tensor | None:
    from reasonrl.rl.losses import token_logprobs

    if ctx.reference is None:
        return None
    out = []
    for chunk in ids.split(ctx.cfg.rl.minibatch_size or len(ids)):
        out.append(token_logprobs(ctx.reference(chunk)[:, :-1], chunk[:, 1:], ctx.cfg.rl.temperature))
    return torch.cat(out)


def update(ctx: RLContext, batch: RolloutBatch, adv: torch.Tensor, step: int) -> dict[str, float]:
    """GRPO updates on one rollout batch (reference log-probs computed once, before any update)."""
    tensors = {"ids": batch.ids, "mask": loss_mask(ctx, batch), "old": batch.old_logp, "adv": adv,
               "ref": reference_logprobs(ctx, batch.ids)}
    return minibatch_updates(ctx, step, tensors, lambda model, mb: grpo_loss(model, mb, ctx.cfg))


def minibatch_updates(ctx: RLContext, step: int, tensors: dict, loss_fn) -> dict[str, float]:
    """mu passes over the rows of `tensors` in minibatches of `rl.minibatch_size` rows, one optimizer
    step each (split into `optim.grad_accum` microbatches); returns the metrics averaged over steps.
    Passes after the first visit the rows in an order drawn from (seed, step, pass)."""
    from reasonrl.train.loop import seed_for

    rl = ctx.cfg.rl
    n = len(tensors["ids"])
    size = rl.minibatch_size or n
    totals: dict[str, float] = {}
    count = 0
    for epoch in range(rl.mu):
        order = torch.arange(n) if epoch == 0 else torch.randperm(
            n, generator=torch.Generator().manual_seed(seed_for(ctx.cfg.run.seed, step, f"pass{epoch}")))
        for start in range(0, n, size):
            rows = order[start:start + size]
            mb = {k: None if v is None else v[rows] for k, v in tensors.items()}
            for key, value in ctx.trainer.step(loss_fn, split_micro(mb, ctx.cfg)).items():
                totals[key] = totals.get(key, 0.0) + float(value)
            count += 1
    return {k: v / count for k, v in totals.items()}


def split_micro(mb: dict, cfg) -> list[dict]:
    """`optim.grad_accum` microbatches of one minibatch (lower peak memory, same update). Each
    carries `num_tokens`, the minibatch's token count over the number of microbatches: a token-mean
    loss divided by it, averaged by the trainer, is the token mean of the whole minibatch."""
    n = max(1, min(cfg.optim.grad_accum, len(mb["ids"])))
    chunks = [{k: (None if v is None else v.tensor_split(n)[i]) for k, v in mb.items()} for i in range(n)]
    for chunk in chunks:
        chunk["num_tokens"] = float(mb["mask"].sum()) / n
    return chunks


def policy_forward(model, ids: torch.Tensor, temperature: float):
    """Token log-probs (and MoE loads / entropy) of the targets ids[:, 1:]."""
    from reasonrl.rl.losses import token_entropy, token_logprobs

    out = model.forward_train(ids)
    logits = out.logits[:, :-1]
    logp = token_logprobs(logits, ids[:, 1:], temperature)
    with torch.no_grad():
        entropy = token_entropy(logits.detach(), temperature)
    return logp, entropy, getattr(out, "moe_load", None)


def grpo_loss(model, mb: dict, cfg) -> tuple[torch.Tensor, dict[str, Any], torch.Tensor | None]:
    from reasonrl.rl.losses import policy_loss

    rl = cfg.rl
    logp, entropy, load = policy_forward(model, mb["ids"], rl.temperature)
    loss, metrics = policy_loss(logp, mb["old"], mb["adv"], mb["mask"], eps_low=rl.eps_low, eps_high=rl.eps_high,
                                beta=rl.beta, ref_logp=mb["ref"], aggregation=rl.aggregation,
                                max_len=rl.max_new_tokens,
                                num_tokens=mb["num_tokens"] if rl.aggregation == "token_mean" else None)
    tokens = mb["mask"].sum().clamp(min=1)
    metrics["entropy"] = (entropy * mb["mask"]).sum() / tokens
    return loss, metrics, load
