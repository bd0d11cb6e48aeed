"""Policy-gradient losses as pure functions returning ``(loss, metrics)``.

Shapes: B sequences (completions), T completion positions (right-padded), V vocabulary.
``mask`` is 1 on real completion tokens and 0 on padding. Log-probs are of the sampled tokens.

Aggregation modes (how token losses become one scalar) and their TRL ``loss_type`` names:

- ``seq_mean_token_mean`` (TRL ``"grpo"``): mean over each sequence's tokens, then over sequences.
- ``token_mean`` (TRL ``"dapo"``/``"bnpo"``): sum over all tokens of the batch / number of tokens.
- ``constant`` (TRL ``"dr_grpo"``): sum over all tokens / (num sequences * ``max_len``).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

# Rows of logits processed at once by token_logprobs/token_entropy: bounds the (chunk, V) float32
# temporaries instead of materialising a full (B, T, V) log_softmax.
_CHUNK_ROWS = 1024


def _rows(logits: Tensor, temperature: float) -> Tensor:
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    return logits.reshape(-1, logits.shape[-1])  # (B*T, V)


def _scaled(chunk: Tensor, temperature: float) -> Tensor:
    # float32 for a stable logsumexp under bf16; skip the extra (n, V) copy at temperature 1.
    x = chunk.float()
    return x if temperature == 1.0 else x / temperature


def token_logprobs(logits: Tensor, target_ids: Tensor, temperature: float = 1.0) -> Tensor:
    """``log_softmax(logits / temperature)`` gathered at ``target_ids``: (B, T, V), (B, T) -> (B, T).

    Computed as ``x_target - logsumexp(x)`` in row chunks so only a (chunk, V) temporary exists;
    the same quantity the sampler records, so the first inner update has ratio exactly 1.
    """
    flat = _rows(logits, temperature)  # (N, V)
    ids = target_ids.reshape(-1)  # (N,)
    out = []
    for start in range(0, flat.shape[0], _CHUNK_ROWS):
        x = _scaled(flat[start : start + _CHUNK_ROWS], temperature)  # (n, V)
        tgt = x.gather(1, ids[start : start + _CHUNK_ROWS, None]).squeeze(1)  # (n,)
        out.append(tgt - torch.logsumexp(x, dim=-1))
    return torch.cat(out).view(target_ids.shape)


def token_entropy(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Entropy of ``softmax(logits / temperature)`` per position: (B, T, V) -> (B, T)."""
    flat = _rows(logits, temperature)
    out = []
    for start in range(0, flat.shape[0], _CHUNK_ROWS):
        x = _scaled(flat[start : start + _CHUNK_ROWS], temperature)  # (n, V)
        logp = F.log_softmax(x, dim=-1)
        out.append(-(logp.exp() * logp).sum(-1))
    return torch.cat(out).view(logits.shape[:-1])


def k3_kl(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k3 estimator of KL(pi_theta || pi_ref) per token: ``exp(d) - d - 1`` with ``d = ref - logp``.

    Unbiased for samples from pi_theta and always >= 0 (Schulman, "Approximating KL divergence").
    """
    d = ref_logp - logp
    return torch.exp(d) - d - 1


# --------------------------------------------------------------------------------------------
# aggregation: (per-token loss (B, T), mask (B, T), max_len, num_tokens) -> scalar


def _seq_mean_token_mean(tok: Tensor, mask: Tensor, max_len: int | None, num_tokens=None) -> Tensor:
    # clamp: an all-padding row contributes 0 instead of NaN (TRL clamps the same way).
    per_seq = (tok * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)  # (B,)
    return per_seq.mean()


def _token_mean(tok: Tensor, mask: Tensor, max_len: int | None, num_tokens=None) -> Tensor:
    # num_tokens: the token count of the whole accumulation window (TRL's num_items_in_batch), so
    # that summing micro-batch losses gives the window's token mean rather than a mean of means.
    denom = mask.sum() if num_tokens is None else torch.as_tensor(num_tokens, dtype=tok.dtype)
    return (tok * mask).sum() / denom.clamp(min=1.0)


def _constant(tok: Tensor, mask: Tensor, max_len: int | None, num_tokens=None) -> Tensor:
    # A fixed normaliser (the generation budget) removes GRPO's length bias (Dr. GRPO).
    if max_len is None:
        raise ValueError("aggregation 'constant' needs max_len (the max completion length)")
    return (tok * mask).sum() / (tok.shape[0] * max_len)


AGGREGATIONS: dict[str, Callable[..., Tensor]] = {
    "seq_mean_token_mean": _seq_mean_token_mean,
    "token_mean": _token_mean,
    "constant": _constant,
}

# TRL loss_type -> our aggregation name (for configs written in TRL's vocabulary).
TRL_LOSS_TYPES = {
    "grpo": "seq_mean_token_mean",
    "dapo": "token_mean",
    "bnpo": "token_mean",
    "dr_grpo": "constant",
}


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def clipped_surrogate(
    log_ratio: Tensor, advantages: Tensor, eps_low: float, eps_high: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-token PPO surrogate ``-min(rho A, clip(rho, 1-eps_low, 1+eps_high) A)``.

    ``log_ratio``: (B, T) (or (B, 1) for sequence-level ratios); ``advantages``: broadcastable.
    Returns ``(loss (B, T), low_clipped (B, T) bool, high_clipped (B, T) bool)``: a token counts as
    clipped only where the clip is the active branch of the min (no gradient flows through it).
    """
    ratio = torch.exp(log_ratio)
    clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high)
    loss = -torch.min(ratio * advantages, clipped * advantages)
    low = (ratio < 1 - eps_low) & (advantages < 0)
    high = (ratio > 1 + eps_high) & (advantages > 0)
    return loss, low, high


def aggregate(
    tok: Tensor, mask: Tensor, aggregation: str, max_len: int | None = None, num_tokens=None
) -> Tensor:
    """Reduce per-token losses (B, T) to a scalar with one of ``AGGREGATIONS``."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; choose one of {sorted(AGGREGATIONS)}")
    if num_tokens is not None and aggregation != "token_mean":
        raise ValueError("num_tokens only applies to aggregation 'token_mean'")
    return AGGREGATIONS[aggregation](tok, mask, max_len, num_tokens)


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    beta: float = 0.0,
    ref_logp: Tensor | None = None,
    aggregation: str = "seq_mean_token_mean",
    max_len: int | None = None,
    num_tokens: float | None = None,
    ratio_level: str = "token",
) -> tuple[Tensor, dict[str, float]]:
    """Clipped surrogate + ``beta`` * k3 KL, aggregated over tokens.

    logp, old_logp, ref_logp, mask: (B, T); advantages: (B,) per sequence (GRPO) or (B, T) per
    token (PPO). ``max_len``: the generation budget for ``constant``; ``num_tokens``: optional
    ``token_mean`` denominator spanning a gradient-accumulation window. ``ratio_level="sequence"`` uses GSPO's ratio ``exp(mean_t log rho_t)`` per row
    (pass GSPO's own eps, e.g. 3e-4 / 4e-4). Metrics: ``loss``, ``kl`` (token mean of k3, 0 without
    a reference), ``clip_frac/low``, ``clip_frac/high`` (fractions of real tokens).
    """
    mask = mask.to(logp.dtype)
    adv = advantages.to(logp.dtype)
    adv = adv.unsqueeze(1) if adv.dim() == 1 else adv  # (B, 1) or (B, T)
    log_ratio = logp - old_logp.detach()  # (B, T)
    if ratio_level == "sequence":
        seq = (log_ratio * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1.0)
        # GSPO: one length-normalised ratio per sequence; its gradient spreads evenly over tokens.
        log_ratio = seq.expand_as(logp)  # (B, T)
    elif ratio_level != "token":
        raise ValueError(f"ratio_level must be 'token' or 'sequence', got {ratio_level!r}")
    tok, low, high = clipped_surrogate(log_ratio, adv, eps_low, eps_high)  # (B, T)
    kl = None
    if ref_logp is not None:
        kl = k3_kl(logp, ref_logp.detach())  # (B, T)
        if beta != 0.0:
            tok = tok + beta * kl
    elif beta != 0.0:
        raise ValueError("beta > 0 needs ref_logp")
    loss = aggregate(tok, mask, aggregation, max_len, num_tokens)
    with torch.no_grad():
        metrics = {
            "loss": loss.item(),
            "kl": _masked_mean(kl, mask).item() if kl is not None else 0.0,
            "clip_frac/low": _masked_mean(low.to(mask.dtype), mask).item(),
            "clip_frac/high": _masked_mean(high.to(mask.dtype), mask).item(),
        }
    return loss, metrics


def ppo_policy_loss(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, **kwargs
) -> tuple[Tensor, dict[str, float]]:
    """PPO actor loss: :func:`policy_loss` with per-token advantages (B, T) from GAE.

    Defaults to ``token_mean`` aggregation, the usual PPO choice; KL normally lives in the reward
    (``ppo_token_rewards``), so ``beta`` defaults to 0.
    """
    if advantages.shape != logp.shape:
        raise ValueError(f"PPO advantages must be per token {tuple(logp.shape)}")
    kwargs.setdefault("aggregation", "token_mean")
    return policy_loss(logp, old_logp, advantages, mask, **kwargs)


def value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, clip: float | None = 0.2
) -> tuple[Tensor, dict[str, float]]:
    """Clipped value loss ``0.5 * max((V - R)^2, (V_old + clip(V - V_old, +-clip) - R)^2)``.

    All (B, T); token mean over ``mask``. ``clip=None`` gives the plain squared error. Metrics:
    ``value_loss``, ``value_clip_frac`` (tokens where the clipped branch is the larger one).
    """
    mask = mask.to(values.dtype)
    returns = returns.detach()
    err = (values - returns) ** 2
    if clip is None:
        tok, frac = err, torch.zeros_like(err)
    else:
        v_clip = old_values.detach() + torch.clamp(values - old_values.detach(), -clip, clip)
        err_clip = (v_clip - returns) ** 2
        tok = torch.max(err, err_clip)
        frac = (err_clip > err).to(values.dtype)
    loss = 0.5 * _masked_mean(tok, mask)
    metrics = {"value_loss": loss.item(), "value_clip_frac": _masked_mean(frac, mask).item()}
    return loss, metrics
