"""Building blocks shared by attention, experts and MTP: RMSNorm, RoPE (+ YaRN), SwiGLU."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # normalise in fp32 (bf16 variance is too coarse), scale in the input dtype like transformers
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)); the dense FFN and the shared experts."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def _yarn_inv_freq(dim: int, base: float, rs: dict) -> torch.Tensor:
    """YaRN frequencies: interpolate low frequencies by `factor`, keep high ones (transformers' formula)."""
    factor = rs["factor"]
    orig = rs["original_max_position_embeddings"]
    beta_fast, beta_slow = rs.get("beta_fast") or 32, rs.get("beta_slow") or 1

    def corr_dim(rot: float) -> float:
        return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

    low, high = corr_dim(beta_fast), corr_dim(beta_slow)
    if rs.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # avoid a zero-width ramp
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    pos_freqs = base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    extra = 1 - ramp  # 1 = keep the original (extrapolated) frequency
    return (1.0 / (factor * pos_freqs)) * (1 - extra) + (1.0 / pos_freqs) * extra


def rope_params(dim: int, theta: float, rope_scaling: dict | None) -> tuple[torch.Tensor, float, float]:
    """-> (inv_freq [dim/2], cos/sin scale, softmax-scale multiplier).

    With YaRN, transformers scales cos/sin by attention_factor = mscale(s, mscale) / mscale(s,
    mscale_all_dim) and the softmax scale by mscale(s, mscale_all_dim)^2; the reference V3 code only
    does the latter. The two agree for V3's config (mscale == mscale_all_dim == 1).
    """
    rs = rope_scaling or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind in (None, "default"):
        inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        return inv, 1.0, 1.0
    if kind != "yarn":
        raise ValueError(f"rope_scaling type {kind!r} is not supported (use 'yarn' or None)")
    factor = rs["factor"]
    m, m_all = rs.get("mscale"), rs.get("mscale_all_dim")
    att = rs.get("attention_factor")
    if att is None:
        att = yarn_mscale(factor, m) / yarn_mscale(factor, m_all) if (m and m_all) else yarn_mscale(factor)
    softmax_mult = yarn_mscale(factor, m_all) ** 2 if m_all else 1.0
    return _yarn_inv_freq(dim, theta, rs), float(att), softmax_mult


class Rotary(nn.Module):
    """RoPE on adjacent pairs (x[2i], x[2i+1]), the layout of DeepSeek's weights.

    The rotated pairs come out de-interleaved ([evens | odds]) as in transformers: q and k get the
    same permutation, so every dot product (all attention ever uses) is unchanged and a copy is saved.
    """

    def __init__(self, dim: int, theta: float, rope_scaling: dict | None):
        super().__init__()
        inv, self.attention_factor, self.softmax_mult = rope_params(dim, theta, rope_scaling)
        self.register_buffer("inv_freq", inv, persistent=False)

    def _apply(self, fn, recurse=True):
        inv = self.inv_freq  # frequencies stay fp32 whatever dtype the model is cast to
        super()._apply(fn, recurse)
        self.inv_freq = inv.to(self.inv_freq.device)
        return self

    def cos_sin(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        ang = positions[..., None].float() * self.inv_freq  # (B, T, d_r/2)
        cos, sin = ang.cos() * self.attention_factor, ang.sin() * self.attention_factor
        return cos.to(dtype), sin.to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (..., d_r); cos/sin (..., d_r/2) broadcastable to x's leading dims."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
