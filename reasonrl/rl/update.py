"""The update machinery every RL algorithm shares: loss masks, reference log-probs, and mu passes
of minibatch optimizer steps split into microbatches.

    tensors = {"ids": ..., "mask": ..., "old": ..., "adv": ..., "ref": ...}
    stats = minibatch_updates(ctx, step, tensors, loss_fn)   # loss_fn(model, microbatch) -> (loss, metrics, load)
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from reasonrl.rl.rollout import RolloutBatch
from reasonrl.seeding import seed_for


def loss_mask(batch: RolloutBatch, overlong_filter: bool) -> torch.Tensor:
    """Completion-token mask; DAPO overlong filtering masks truncated samples out entirely."""
    if not overlong_filter:
        return batch.mask
    keep = torch.tensor([not t for t in batch.truncated], dtype=batch.mask.dtype, device=batch.mask.device)
    return batch.mask * keep[:, None]


@torch.no_grad()
def reference_logprobs(reference: torch.nn.Module | None, ids: torch.Tensor, mask: torch.Tensor, temperature: float,
                       chunk_rows: int, path: str = "completion", prompt_len: torch.Tensor | None = None
                       ) -> torch.Tensor | None:
    """Log-probs of ids[:, 1:] under the frozen reference (None without one: beta = 0 keeps none,
    so no forward runs), in chunks of `chunk_rows` rows, without autograd. ids (N, L), mask (N, L-1);
    prompt_len (N,) or None: see rl/logprobs.py (shared prompts)."""
    from reasonrl.rl.logprobs import sequence_logprobs

    if reference is None:
        return None
    lens = [None] * len(ids.split(chunk_rows)) if prompt_len is None else prompt_len.split(chunk_rows)
    out = [sequence_logprobs(reference, i, m, temperature, path, entropy=False, prompt_len=p).logp
           for i, m, p in zip(ids.split(chunk_rows), mask.split(chunk_rows), lens)]
    return torch.cat(out)  # (N, L-1)


def minibatch_updates(ctx: Any, step: int, tensors: dict, loss_fn: Callable) -> dict[str, float]:
    """mu passes over the rows of `tensors` in minibatches of `rl.minibatch_size` rows, one optimizer
    step each (split into `ctx.grad_accum` microbatches); returns the metrics averaged over steps.
    Passes after the first visit the rows in an order drawn from (seed, step, pass)."""
    from reasonrl.ranks import world_size

    rl = ctx.rl
    n = len(tensors["ids"])
    size = rl.minibatch_size // world_size() or n  # under torchrun each rank holds its share of a minibatch
    totals: dict[str, float] = {}
    count = 0
    for epoch in range(rl.mu):
        order = torch.arange(n) if epoch == 0 else torch.randperm(
            n, generator=torch.Generator().manual_seed(seed_for(ctx.seed, step, f"pass{epoch}")))
        for start in range(0, n, size):
            rows = order[start:start + size]
            mb = {k: None if v is None else v[rows] for k, v in tensors.items()}
            for key, value in ctx.trainer.step(loss_fn, split_micro(mb, ctx.grad_accum)).items():
                totals[key] = totals.get(key, 0.0) + float(value)
            count += 1
    # phase times add up over the optimizer steps; everything else is their mean
    return {k: v if k.startswith("time/") else v / count for k, v in totals.items()}


def split_micro(mb: dict, grad_accum: int) -> list[dict]:
    """`grad_accum` microbatches of one minibatch (lower peak memory, same update). Each carries
    `num_tokens`, the minibatch's token count over the number of microbatches: a token-mean loss
    divided by it, averaged by the trainer (and over ranks), is the token mean of the whole minibatch."""
    from reasonrl.train import distributed

    n = max(1, min(grad_accum, len(mb["ids"])))
    chunks = [{k: (None if v is None else v.tensor_split(n)[i]) for k, v in mb.items()} for i in range(n)]
    tokens = float(mb["mask"].sum()) / n
    if distributed.active():  # the token mean is over every rank's minibatch rows, as one process would take it
        from reasonrl.ranks import world_size

        tokens = float(distributed.all_reduce_sum(mb["mask"].sum().float())) / (n * world_size())
    for chunk in chunks:
        chunk["num_tokens"] = tokens
    return chunks


def policy_forward(model, ids: torch.Tensor, mask: torch.Tensor, temperature: float, path: str = "completion",
                   prompt_len: torch.Tensor | None = None):
    """Token log-probs (B, L-1) of the targets ids[:, 1:] where `mask` is set, their entropy (no
    gradient) and the MoE loads; see reasonrl/rl/logprobs.py for the paths."""
    from reasonrl.rl.logprobs import sequence_logprobs

    out = sequence_logprobs(model, ids, mask, temperature, path, prompt_len=prompt_len)
    return out.logp, out.entropy, out.moe_load
