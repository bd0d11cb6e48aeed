"""Per-token log-probs of sampled completions under a policy: the one place RL computes them.

    out = sequence_logprobs(model, ids, mask, temperature)        # ids (B, L), mask (B, L-1)
    out.logp, out.entropy, out.moe_load                           # (B, L-1), (B, L-1), (n, E) | None

Two paths, equal within fp32 rounding (tests/rl/test_logprobs.py):

- ``"completion"`` (default): the trunk without MTP, then the output head only at the positions
  where ``mask`` is set, in row chunks, through :class:`HeadLogprobs`, which keeps only the hidden
  states for backward and recomputes each chunk's logits there. No (B, L, V) tensor exists, in the
  forward or the backward; positions outside ``mask`` get log-prob and entropy 0.
- ``"full"``: ``forward_train(ids)`` logits at every position, then :func:`token_logprobs`: the
  straightforward reference the first path is tested against (and the fallback for architectures
  whose logits are not a plain linear head of the hidden states).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# float32 elements of one chunk's (rows, V) logits: bounds the temporaries of HeadLogprobs
# (64 MiB; V = 49k gives 341 rows a chunk, a 512-token vocabulary 32k rows)
CHUNK_ELEMENTS = 1 << 24


@dataclass
class LogprobOutput:
    logp: Tensor  # (B, L-1) log-prob of ids[:, 1:]
    entropy: Tensor | None  # (B, L-1) entropy of the same distribution, no gradient
    moe_load: Tensor | None  # native MoE routing load, for the bias update


def sequence_logprobs(model, ids: Tensor, mask: Tensor, temperature: float, path: str = "completion",
                      entropy: bool = True) -> LogprobOutput:
    """Log-probs of the targets ids[:, 1:] (see the module docstring for the two paths)."""
    from reasonrl.rl.losses import token_entropy, token_logprobs

    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    if path not in ("completion", "full"):
        raise ValueError(f"unknown log-prob path {path!r}; choose completion or full")
    head = getattr(model, "output_head", lambda: None)() if path == "completion" else None
    if head is None:
        out = model.forward_train(ids)
        logits = out.logits[:, :-1]  # (B, L-1, V)
        ent = token_entropy(logits.detach(), temperature) if entropy else None
        return LogprobOutput(token_logprobs(logits, ids[:, 1:], temperature), ent, out.moe_load)
    # MTP off: its logits would be discarded, and the trunk's outputs and gradients do not use them
    out = model.forward_train(ids, mtp=False, logits=False)
    where = mask.bool()  # (B, L-1)
    hidden = out.hidden[:, :-1][where]  # (n, d): only the positions that are scored
    logp, ent = HeadLogprobs.apply(hidden, head.weight, head.bias, ids[:, 1:][where], temperature)  # (n,), (n,)
    return LogprobOutput(_scatter(logp, where), _scatter(ent, where) if entropy else None, out.moe_load)


def _scatter(values: Tensor, where: Tensor) -> Tensor:
    """(n,) values at the True positions of `where` (B, T) -> (B, T), 0 elsewhere (differentiable)."""
    return values.new_zeros(where.shape).masked_scatter(where, values)


def _acc(t: Tensor) -> torch.dtype:
    # at least float32: bf16 weights still get float32 log-probs and gradient sums
    return torch.promote_types(t.dtype, torch.float32)


def _chunk_logits(hidden: Tensor, weight: Tensor, bias: Tensor | None, temperature: float) -> Tensor:
    # the head in the model's dtype, then float32 for a stable logsumexp (as token_logprobs does)
    x = F.linear(hidden, weight, bias).to(_acc(hidden))  # (n, V)
    return x if temperature == 1.0 else x / temperature


class HeadLogprobs(torch.autograd.Function):
    """``log_softmax(head(hidden) / T)`` at `targets`, and the entropy, chunk by chunk.

    forward: (n, d), (V, d), (V,) | None, (n,) long, float -> logp (n,), entropy (n,) (no gradient).
    Saves only the inputs; backward recomputes each chunk's logits, so peak memory is one
    (chunk, V) float32 block instead of (n, V) logits kept for autograd.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, temperature):
        rows = max(1, CHUNK_ELEMENTS // weight.shape[0])
        logp = hidden.new_empty(hidden.shape[0], dtype=_acc(hidden))  # (n,)
        ent = torch.empty_like(logp)
        for s in range(0, hidden.shape[0], rows):
            x = _chunk_logits(hidden[s:s + rows], weight, bias, temperature)  # (r, V)
            lse = torch.logsumexp(x, dim=-1)  # (r,)
            logp[s:s + rows] = x.gather(1, targets[s:s + rows, None]).squeeze(1) - lse
            lsm = x - lse[:, None]  # (r, V) log-softmax
            ent[s:s + rows] = -(lsm.exp() * lsm).sum(-1)
        ctx.save_for_backward(hidden, weight, bias, targets)
        ctx.temperature, ctx.rows = temperature, rows
        ctx.mark_non_differentiable(ent)
        return logp, ent

    @staticmethod
    def backward(ctx, grad_logp, _grad_ent):
        hidden, weight, bias, targets = ctx.saved_tensors
        T, rows = ctx.temperature, ctx.rows
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros_like(weight, dtype=_acc(weight)) if need_w else None  # fp32 sum over chunks
        grad_b = torch.zeros_like(bias, dtype=_acc(bias)) if need_b else None
        for s in range(0, hidden.shape[0], rows):
            h = hidden[s:s + rows]  # (r, d)
            x = _chunk_logits(h, weight, bias, T)  # (r, V)
            g = grad_logp[s:s + rows].to(x.dtype)  # (r,)
            # d logp / d x = onehot(target) - softmax(x); d x / d logits = 1 / T
            dx = torch.softmax(x, dim=-1).mul_(-g[:, None])  # (r, V)
            dx.scatter_add_(1, targets[s:s + rows, None], g[:, None])
            dlogits = (dx if T == 1.0 else dx / T).to(weight.dtype)  # (r, V)
            if need_h:
                grad_h[s:s + rows] = dlogits @ weight  # (r, d)
            if need_w:
                grad_w += dlogits.t() @ h  # (V, d)
            if need_b:
                grad_b += dlogits.sum(0)
        return (grad_h, None if grad_w is None else grad_w.to(weight.dtype),
                None if grad_b is None else grad_b.to(bias.dtype), None, None)
