"""Advantage estimators: group-relative (GRPO family) and GAE (PPO).

Rewards arrive flat, prompt-major: ``row = prompt_index * G + sample_index``, so a ``view(-1, G)``
puts each prompt's group on one row. Every estimator is a pure function of the grouped rewards
``(n_groups, G)``; :func:`group_advantages` dispatches by name through ``ADVANTAGE_FNS``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

# TRL adds this to the std (not 1e-8) so that near-constant groups do not explode.
STD_EPS = 1e-4


def _grpo(r: Tensor) -> Tensor:
    # r: (n_groups, G). Bessel-corrected std as in TRL (torch.std default, unbiased=True).
    mean = r.mean(dim=1, keepdim=True)
    std = r.std(dim=1, keepdim=True)
    return (r - mean) / (std + STD_EPS)


def _dr_grpo(r: Tensor) -> Tensor:
    # Dr. GRPO drops the std: dividing by it up-weights easy/hard prompts (difficulty bias).
    return r - r.mean(dim=1, keepdim=True)


def _rloo(r: Tensor) -> Tensor:
    # Leave-one-out baseline: mean of the other G-1 rewards = (sum - r_i) / (G - 1).
    g = r.shape[1]
    if g < 2:
        raise ValueError("rloo needs group_size >= 2")
    baseline = (r.sum(dim=1, keepdim=True) - r) / (g - 1)
    return r - baseline


def _reinforce_pp(r: Tensor) -> Tensor:
    # REINFORCE++ with group baseline: centre per group, then whiten over the whole batch so the
    # scale is shared across prompts (unlike GRPO's per-group std).
    centred = r - r.mean(dim=1, keepdim=True)
    flat = centred.flatten()
    std = flat.std() if flat.numel() > 1 else flat.new_tensor(0.0)
    return (centred - flat.mean()) / (std + STD_EPS)


ADVANTAGE_FNS: dict[str, Callable[[Tensor], Tensor]] = {
    "grpo": _grpo,
    "dr_grpo": _dr_grpo,
    "rloo": _rloo,
    "reinforce_pp": _reinforce_pp,
}


def _grouped(rewards: Tensor, group_size: int) -> Tensor:
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [B*G], got shape {tuple(rewards.shape)}")
    if group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    return rewards.float().view(-1, group_size)  # (n_groups, G)


def zero_std_frac(rewards: Tensor, group_size: int) -> float:
    """Fraction of groups whose rewards are all equal (they carry no GRPO learning signal)."""
    r = _grouped(rewards, group_size)  # (n_groups, G)
    same = (r == r[:, :1]).all(dim=1)
    return same.float().mean().item()


def group_advantages(rewards: Tensor, group_size: int, mode: str = "grpo") -> tuple[Tensor, dict]:
    """Group-relative advantages for prompt-major rewards ``[B*G]``.

    Returns ``(advantages [B*G], metrics)`` with metrics ``zero_std_frac``.
    """
    if mode not in ADVANTAGE_FNS:
        raise ValueError(f"unknown advantage mode {mode!r}; choose one of {sorted(ADVANTAGE_FNS)}")
    r = _grouped(rewards, group_size)
    adv = ADVANTAGE_FNS[mode](r).reshape(-1)  # (B*G,)
    return adv, {"zero_std_frac": zero_std_frac(rewards, group_size)}


# ---------------------------------------------------------------------------------------------
# PPO


def ppo_token_rewards(
    rewards: Tensor, logp: Tensor, ref_logp: Tensor, mask: Tensor, beta: float
) -> Tensor:
    """Per-token PPO rewards: ``r_t = r * [t = last] - beta * (logp_t - ref_logp_t)``.

    This is the InstructGPT/SPEC 5 placement of the KL penalty *in the reward* (the k1 estimator,
    detached: it is a reward, not a loss). GRPO instead puts k3 KL in the loss; with PPO pass
    ``beta=0`` here and ``beta`` to :func:`reasonrl.rl.losses.policy_loss` for that variant.
    rewards: (B,); logp, ref_logp, mask: (B, T) right-padded. Returns (B, T), zero on padding.
    """
    mask = mask.to(logp.dtype)
    lengths = mask.sum(dim=1).long()  # (B,)
    if (lengths == 0).any():
        raise ValueError("every row needs at least one completion token")
    kl = (logp - ref_logp).detach() * mask  # (B, T)
    out = -beta * kl
    last = (lengths - 1).unsqueeze(1)  # (B, 1)
    return out.scatter_add(1, last, rewards.to(out.dtype).unsqueeze(1))


def gae(
    token_rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over right-padded rows.

    ``delta_t = r_t + gamma V_{t+1} - V_t`` (``V`` past the last real token is 0) and
    ``A_t = delta_t + gamma lam A_{t+1}``; returns ``(advantages, returns = A + V)``, both (B, T)
    and zero on padding. Vectorised over B, a reverse loop over T.
    """
    mask = mask.to(values.dtype)
    r = token_rewards * mask  # (B, T)
    v = values.detach() * mask  # (B, T); padding value 0 terminates the episode
    b, t_len = r.shape
    adv = torch.zeros_like(v)
    next_v = v.new_zeros(b)
    next_a = v.new_zeros(b)
    for t in reversed(range(t_len)):
        delta = r[:, t] + gamma * next_v - v[:, t]
        next_a = (delta + gamma * lam * next_a) * mask[:, t]
        adv[:, t] = next_a
        next_v = v[:, t]
    returns = (adv + v) * mask
    return adv, returns
