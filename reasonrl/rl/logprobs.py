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
                      entropy: bool = True, prompt_len: Tensor | None = None) -> LogprobOutput:
    """Log-probs of the targets ids[:, 1:] (see the module docstring for the paths). `prompt_len`
    (N,) on the completion path: rows whose first prompt_len[r] ids are equal share one prompt pass."""
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
    where = mask.bool()  # (B, L-1)
    if prompt_len is not None and hasattr(model, "prefix_hidden"):
        hidden, moe_load = shared_prompt_hidden(model, ids, where, prompt_len)
    else:
        # MTP off: its logits would be discarded, and the trunk's outputs and gradients do not use them
        out = model.forward_train(ids, mtp=False, logits=False)
        hidden, moe_load = out.hidden[:, :-1][where], out.moe_load  # (n, d): only the scored positions
    logp, ent = HeadLogprobs.apply(hidden, head.weight, head.bias, ids[:, 1:][where], temperature)  # (n,), (n,)
    return LogprobOutput(_scatter(logp, where), _scatter(ent, where) if entropy else None, moe_load)


def prompt_lengths(completion_mask: Tensor) -> Tensor:
    """(N,) prompt length of each row from its completion mask (N, L-1): the first completion
    target sits at index prompt_len - 1. A row without completion tokens gets 1 (nothing shared)."""
    has = completion_mask.bool().any(dim=1)
    first = completion_mask.bool().int().argmax(dim=1)
    return torch.where(has, first + 1, torch.ones_like(first))


def prompt_groups(ids: Tensor, prompt_len: Tensor) -> tuple[Tensor, Tensor]:
    """-> (leaders (U,): the first row of each distinct prompt, of_row (N,): each row's prompt)."""
    index: dict[tuple, int] = {}
    leaders, of_row = [], []
    for r, p in enumerate(prompt_len.tolist()):
        key = (p, *ids[r, :p].tolist())
        if key not in index:
            index[key] = len(leaders)
            leaders.append(r)
        of_row.append(index[key])
    return torch.tensor(leaders, device=ids.device), torch.tensor(of_row, device=ids.device)


def shared_prompt_hidden(model, ids: Tensor, where: Tensor, prompt_len: Tensor) -> tuple[Tensor, Tensor | None]:
    """Normed hidden states at the scored positions `where` (N, L-1) -> (n, d), computing each
    distinct prompt once: a prompt pass over the U prompts, then one pass over every row's tokens
    from its prompt length on, attending to its prompt's keys/values. Equal to the full forward
    within fp32 rounding; MoE loads count each shared prompt token once."""
    N, L = ids.shape
    leaders, of_row = prompt_groups(ids, prompt_len)
    p_len = prompt_len.to(ids.device)
    P, C = int(p_len.max()), L - int(p_len.min())
    slots = torch.arange(P, device=ids.device)
    prompts = ids[leaders, :P]  # (U, P); slots past a prompt's length are masked out as keys
    hidden_p, state, loads_p = model.prefix_hidden(prompts, slots < p_len[leaders][:, None])
    positions = (p_len[:, None] + torch.arange(C, device=ids.device)).clamp(max=L - 1)  # (N, C)
    # clamped slots repeat the last token past the row's end: causal, so no real token sees them
    hidden_c, loads_c = model.suffix_hidden(ids.gather(1, positions), positions, state, of_row)
    rows, pos = where.nonzero(as_tuple=True)  # row-major, the order of hidden[where]
    in_prompt = pos < p_len[rows]
    U = len(leaders)
    source = torch.where(in_prompt, of_row[rows] * P + pos, U * P + rows * C + (pos - p_len[rows]))
    flat = torch.cat([hidden_p.reshape(U * P, -1), hidden_c.reshape(N * C, -1)])
    loads = [a + b for a, b in zip(loads_p, loads_c)]
    return flat.index_select(0, source), torch.stack(loads) if loads else None


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
