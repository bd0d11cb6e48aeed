"""Policy-gradient losses as pure functions returning ``(loss, metrics)``.

Shapes: B sequences (completions), T completion positions (right-padded), V vocabulary.
``mask`` is 1 on real completion tokens and 0 on padding. Log-probs are of the sampled tokens.

Aggregation modes (how token losses become one scalar) and their TRL ``loss_type`` names:

- ``seq_mean_token_mean`` (TRL ``"grpo"``): mean over each sequence's tokens, then over sequences.
- ``token_mean`` (TRL ``"dapo"``/``"bnpo"``): sum over all tokens of the batch / number of tokens.
- ``constant`` (TRL ``"dr_grpo"``): sum over all tokens / (num sequences * ``max_len``).

Policy losses by algorithm, ``POLICY_LOSSES`` (``rl.algorithm`` -> function):

- ``"grpo"``: :func:`policy_loss`, token-level clipped ratio (GRPO, DAPO, Dr. GRPO).
- ``"gspo"``: :func:`gspo_loss`, one clipped length-normalised ratio per sequence (GSPO).
- ``"gspo_token"``: :func:`gspo_loss` with ``token_level=True`` (GSPO-token).
- ``"cispo"``: :func:`cispo_loss`, clipped and detached importance weights (CISPO).

All take the same keywords and return ``(loss, metrics)`` with at least ``loss``, ``kl``,
``clip_frac/low`` and ``clip_frac/high``::

    loss, metrics = POLICY_LOSSES[name](
        logp=logp, old_logp=old_logp, advantages=adv, mask=mask,  # (B, T), (B, T), (B,), (B, T)
        ref_logp=None, beta=0.0, eps_low=..., eps_high=...,
        aggregation=..., max_len=None, num_tokens=None)

Each function's own defaults for ``eps_low``, ``eps_high`` and ``aggregation`` are its
algorithm's published ones (GRPO 0.2/0.2, GSPO 3e-4/4e-4, CISPO 1.0/4.0 i.e. weight in [0, 5]),
so a caller should pass only the values it was configured with.
"""

from __future__ import annotations

from functools import partial
from types import MappingProxyType
from typing import Callable, Mapping

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


def _per_row_or_token(advantages: Tensor, like: Tensor) -> Tensor:
    adv = advantages.to(like.dtype)
    return adv.unsqueeze(1) if adv.dim() == 1 else adv  # (B, 1) or (B, T)


def _add_kl(tok: Tensor, logp: Tensor, ref_logp: Tensor | None, beta: float) -> tuple[Tensor, Tensor | None]:
    """``tok + beta * k3`` per token and the k3 values (None without a reference)."""
    if ref_logp is None:
        if beta != 0.0:
            raise ValueError("beta > 0 needs ref_logp")
        return tok, None
    kl = k3_kl(logp, ref_logp.detach())  # (B, T)
    return (tok + beta * kl if beta != 0.0 else tok), kl


def _reweighted(tok: Tensor, is_weights: Tensor | None) -> Tensor:
    """The surrogate per token times the sampler-mismatch weights (rl/tis.py), detached; the KL
    term is a regulariser on the trainer's own distribution and is not reweighted."""
    return tok if is_weights is None else tok * is_weights.detach().to(tok.dtype)


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
    is_weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """GRPO: token-level clipped surrogate + ``beta`` * k3 KL, aggregated over tokens.

    logp, old_logp, ref_logp, mask: (B, T); advantages: (B,) per sequence (GRPO) or (B, T) per
    token (PPO). ``max_len``: the generation budget for ``constant``; ``num_tokens``: optional
    ``token_mean`` denominator spanning a gradient-accumulation window. Metrics: ``loss``, ``kl``
    (token mean of k3, 0 without a reference), ``clip_frac/low``, ``clip_frac/high`` (fractions
    of real tokens).
    """
    mask = mask.to(logp.dtype)
    adv = _per_row_or_token(advantages, logp)  # (B, 1) or (B, T)
    log_ratio = logp - old_logp.detach()  # (B, T)
    tok, low, high = clipped_surrogate(log_ratio, adv, eps_low, eps_high)  # (B, T)
    tok, kl = _add_kl(_reweighted(tok, is_weights), logp, ref_logp, beta)
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


def _seq_log_ratio(logp: Tensor, old_logp: Tensor, mask: Tensor, token_level: bool) -> Tensor:
    """GSPO's length-normalised log ratio ``log s_i = mean_t (logp - old)``: (B, 1), or (B, T)
    for GSPO-token, whose value is ``log s_i`` at every token but whose gradient is token t's own."""
    log_ratio = (logp - old_logp.detach()) * mask  # (B, T)
    seq = log_ratio.sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1.0)  # (B, 1)
    if not token_level:
        return seq
    # s_it = sg[s_i] * pi(y_t) / sg[pi(y_t)]: equal to s_i, d s_it / d logp_t = s_i
    return seq.detach() + logp - logp.detach()  # (B, T)


def gspo_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    eps_low: float = 3e-4,
    eps_high: float = 4e-4,
    beta: float = 0.0,
    ref_logp: Tensor | None = None,
    aggregation: str = "seq_mean_token_mean",
    max_len: int | None = None,
    num_tokens: float | None = None,
    token_level: bool = False,
    is_weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """GSPO (Zheng et al. 2025): the clipped surrogate on the sequence ratio
    ``s_i = exp(mean_t log(pi_theta / pi_old))``, one clip decision per sequence.

    ``-min(s_i A_i, clip(s_i, 1 - eps_low, 1 + eps_high) A_i)`` is broadcast over the sequence's
    tokens (plus ``beta`` * k3 per token, off by default as in the paper) and aggregated; the
    default ``seq_mean_token_mean`` makes it the paper's mean over sequences, so the gradient of
    token t is ``-s_i A_i / (|y_i| B)`` (other aggregations weigh sequences by length, as TRL's
    ``importance_sampling_level="sequence"`` does). Default eps: the paper's 3e-4 / 4e-4.
    advantages: (B,). ``token_level=True`` is GSPO-token (``s_it = sg[s_i] pi(y_t)/sg[pi(y_t)]``),
    which also takes per-token advantages (B, T) and equals GSPO for (B,) ones.
    Metrics: ``loss``, ``kl``, ``clip_frac/low``/``high`` and ``ratio/mean`` (mean ``s_i``), all
    over the sequences with at least one real token (over real tokens for GSPO-token).
    """
    if advantages.dim() != 1 and not token_level:
        raise ValueError("GSPO takes one advantage per sequence (B,); use token_level for (B, T)")
    mask = mask.to(logp.dtype)
    adv = _per_row_or_token(advantages, logp)  # (B, 1) or (B, T)
    log_s = _seq_log_ratio(logp, old_logp, mask, token_level)  # (B, 1) or (B, T)
    seq_loss, low, high = clipped_surrogate(log_s, adv, eps_low, eps_high)
    tok, kl = _add_kl(_reweighted(seq_loss.expand_as(logp), is_weights), logp, ref_logp, beta)  # (B, T)
    loss = aggregate(tok, mask, aggregation, max_len, num_tokens)
    with torch.no_grad():
        # a (B, 1) statistic averaged over real sequences, a (B, T) one over real tokens
        over = (mask.sum(-1, keepdim=True) > 0).to(mask.dtype) if log_s.shape[1] == 1 else mask
        metrics = {
            "loss": loss.item(),
            "kl": _masked_mean(kl, mask).item() if kl is not None else 0.0,
            "clip_frac/low": _masked_mean(low.to(mask.dtype), over).item(),
            "clip_frac/high": _masked_mean(high.to(mask.dtype), over).item(),
            "ratio/mean": _masked_mean(log_s.exp(), over).item(),
        }
    return loss, metrics


def cispo_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    eps_low: float = 1.0,
    eps_high: float = 4.0,
    beta: float = 0.0,
    ref_logp: Tensor | None = None,
    aggregation: str = "token_mean",
    max_len: int | None = None,
    num_tokens: float | None = None,
    is_weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """CISPO (MiniMax-M1): ``-sg(clip(rho_t, 1 - eps_low, 1 + eps_high)) * A * logp_t`` per token.

    The importance weight is clipped and detached instead of the update, so every token keeps a
    gradient ``-w_t A`` (PPO/GRPO drop clipped tokens entirely); only the gradient is meaningful,
    the loss value is REINFORCE-style. Defaults: ``eps_low=1.0`` puts the lower bound at 0, i.e.
    no lower clip (MiniMax-M1 sets eps_low large and tunes only the upper bound), and
    ``eps_high=4.0`` caps the weight at 5, ScaleRL's eps_max (TRL's ``epsilon_high`` for cispo is
    that cap itself, ``1 + eps_high`` here). Aggregation ``token_mean`` as in the paper; plus
    ``beta`` * k3 per token. advantages: (B,) or (B, T). Metrics: ``loss``, ``kl``,
    ``clip_frac/low``/``high`` (fractions of real tokens whose weight was clipped below/above,
    whatever the sign of A: the clipped weight scales every token's gradient), ``ratio/mean``.
    """
    mask = mask.to(logp.dtype)
    adv = _per_row_or_token(advantages, logp)  # (B, 1) or (B, T)
    ratio = torch.exp(logp.detach() - old_logp.detach())  # (B, T)
    weight = torch.clamp(ratio, 1 - eps_low, 1 + eps_high)  # (B, T), no gradient
    tok, kl = _add_kl(_reweighted(-weight * adv * logp, is_weights), logp, ref_logp, beta)  # (B, T)
    loss = aggregate(tok, mask, aggregation, max_len, num_tokens)
    with torch.no_grad():
        metrics = {
            "loss": loss.item(),
            "kl": _masked_mean(kl, mask).item() if kl is not None else 0.0,
            "clip_frac/low": _masked_mean((ratio < 1 - eps_low).to(mask.dtype), mask).item(),
            "clip_frac/high": _masked_mean((ratio > 1 + eps_high).to(mask.dtype), mask).item(),
            "ratio/mean": _masked_mean(ratio, mask).item(),
        }
    return loss, metrics


PolicyLoss = Callable[..., tuple[Tensor, dict[str, float]]]

# rl.algorithm -> policy loss; one keyword signature (see the module docstring). Read-only.
POLICY_LOSSES: Mapping[str, PolicyLoss] = MappingProxyType({
    "grpo": policy_loss,
    "gspo": gspo_loss,
    "gspo_token": partial(gspo_loss, token_level=True),
    "cispo": cispo_loss,
})


def value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, clip: float | None = 0.2,
    num_tokens: float | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Clipped value loss ``0.5 * max((V - R)^2, (V_old + clip(V - V_old, +-clip) - R)^2)``.

    All (B, T); token mean over ``mask``, or the masked sum over ``num_tokens`` (the token mean of a
    minibatch split into microbatches or over ranks). ``clip=None`` gives the plain squared error. Metrics:
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
    loss = 0.5 * (_masked_mean(tok, mask) if num_tokens is None else (tok * mask).sum() / num_tokens)
    # averaged over microbatches and ranks, the logged loss is the global token mean
    metrics = {"value_loss": loss.item(), "value_clip_frac": _masked_mean(frac, mask).item()}
    return loss, metrics
