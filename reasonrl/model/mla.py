"""Multi-head latent attention (DeepSeek-V2/V3) and its latent decode cache.

Naive path (training, prefill): expand the latent c_kv into per-head K and V and run ordinary
attention. Absorbed path (decode): fold W_uk into the query and W_uv into the output so attention
runs in the d_c-dimensional latent space and per-head K/V are never materialised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layers import RMSNorm, apply_rope


class LatentCache:
    """Per layer, per row, per slot: the normalised c_kv [d_c] and the roped shared key [d_r].

    Slot = position: a token at position p is written to slot p of its row and attends to slots
    0..p of that row (see docs/design.md). `mtp` holds one single-layer cache per MTP module.
    """

    decodes = True  # short cached forwards (decode steps) attend in latent space

    def __init__(self, n_layers: int, batch_size: int, max_len: int, d_c: int, d_r: int,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None):
        self.kv = torch.zeros(n_layers, batch_size, max_len, d_c, dtype=dtype, device=device)
        self.pe = torch.zeros(n_layers, batch_size, max_len, d_r, dtype=dtype, device=device)
        self.mtp: list[LatentCache] = []

    @property
    def batch_size(self) -> int:
        return self.kv.shape[1]

    @property
    def max_len(self) -> int:
        return self.kv.shape[2]

    def keep(self, rows: torch.Tensor) -> "LatentCache":
        """Shrink to the given batch rows, in that order (finished rows stop costing compute)."""
        rows = torch.as_tensor(rows, dtype=torch.long, device=self.kv.device)
        self.kv, self.pe = self.kv.index_select(1, rows), self.pe.index_select(1, rows)
        for m in self.mtp:
            m.keep(rows)
        return self

    def write(self, layer: int, positions: torch.Tensor, c_kv: torch.Tensor, k_pe: torch.Tensor) -> None:
        # positions (B, T); c_kv (B, T, d_c); k_pe (B, T, d_r)
        if int(positions.max()) >= self.max_len:
            raise IndexError(f"position {int(positions.max())} is beyond the cache (max_len {self.max_len})")
        idx = positions[..., None]
        self.kv[layer].scatter_(1, idx.expand_as(c_kv), c_kv.to(self.kv.dtype))
        self.pe[layer].scatter_(1, idx.expand_as(k_pe), k_pe.to(self.pe.dtype))

    def attend(self, layer: int, positions: torch.Tensor, c_kv: torch.Tensor, k_pe: torch.Tensor):
        """Write the new tokens' latents, then -> (c_kv (B, S, d_c), k_pe (B, S, d_r), mask (B, T, S))
        of every slot up to the furthest position, the mask letting a token see slots 0..p."""
        self.write(layer, positions, c_kv, k_pe)
        S = int(positions.max()) + 1  # no query looks past the furthest position
        mask = torch.arange(S, device=c_kv.device) <= positions[..., None]  # (B, T, S)
        return self.kv[layer, :, :S], self.pe[layer, :, :S], mask

    def bytes_per_token_per_layer(self) -> int:
        per = self.kv.shape[-1] * self.kv.element_size() + self.pe.shape[-1] * self.pe.element_size()
        return per


ABSORB_MAX_TOKENS = 4  # cached forwards up to this many tokens attend in latent space


class MLA(nn.Module):
    def __init__(self, cfg: ModelConfig, softmax_mult: float = 1.0):
        super().__init__()
        d, H = cfg.hidden_size, cfg.num_attention_heads
        self.n_heads, self.d_c, self.d_r = H, cfg.kv_lora_rank, cfg.qk_rope_head_dim
        self.d_h, self.d_v = cfg.qk_nope_head_dim, cfg.v_head_dim
        if cfg.q_lora_rank:
            self.q_a_proj = nn.Linear(d, cfg.q_lora_rank, bias=False)
            self.q_a_layernorm = RMSNorm(cfg.q_lora_rank, cfg.rms_norm_eps)
            self.q_b_proj = nn.Linear(cfg.q_lora_rank, H * cfg.qk_head_dim, bias=False)
        else:
            self.q_proj = nn.Linear(d, H * cfg.qk_head_dim, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(d, self.d_c + self.d_r, bias=False)
        self.kv_a_layernorm = RMSNorm(self.d_c, cfg.rms_norm_eps)
        self.kv_b_proj = nn.Linear(self.d_c, H * (self.d_h + self.d_v), bias=False)
        self.o_proj = nn.Linear(H * self.d_v, d, bias=False)
        self.scale = cfg.qk_head_dim ** -0.5 * softmax_mult  # YaRN: times mscale^2

    def _projections(self, x):
        """-> q (B, T, H*(d_h+d_r)), [c_kv ; k_pe] (B, T, d_c+d_r). q_a_proj and kv_a_proj_with_mqa
        read the same x, so they run as one GEMM (one grad-input GEMM in the backward too)."""
        if hasattr(self, "q_proj"):
            return self.q_proj(x), self.kv_a_proj_with_mqa(x)
        w = torch.cat([self.q_a_proj.weight, self.kv_a_proj_with_mqa.weight])
        q_a, kv_a = F.linear(x, w).split([self.q_a_proj.out_features, self.d_c + self.d_r], dim=-1)
        return self.q_b_proj(self.q_a_layernorm(q_a)), kv_a

    def _queries(self, q, cos, sin):
        B, T, _ = q.shape
        # heads-first, so the concatenated query below is contiguous in the layout SDPA wants
        q = q.view(B, T, self.n_heads, self.d_h + self.d_r).transpose(1, 2)
        q_nope, q_pe = q.split([self.d_h, self.d_r], dim=-1)
        return q_nope, apply_rope(q_pe, cos[:, None], sin[:, None])  # (B, H, T, d_h), (B, H, T, d_r)

    def _latent(self, kv_a, cos, sin):
        c_kv, k_pe = kv_a.split([self.d_c, self.d_r], dim=-1)
        return self.kv_a_layernorm(c_kv), apply_rope(k_pe, cos, sin)  # (B, T, d_c), (B, T, d_r)

    def forward(self, x, cos, sin, cache: LatentCache | None = None, layer: int = 0,
                positions: torch.Tensor | None = None, absorb: bool | None = None) -> torch.Tensor:
        """x (B, T, d). Without a cache: causal over the T tokens. With one: write slots
        `positions` (B, T), attend slots 0..p. absorb=None picks the absorbed path for short cached
        forwards (decode steps and speculative verification), where decompressing the whole
        latent cache would cost more than attending in latent space."""
        q, kv_a = self._projections(x)
        q_nope, q_pe = self._queries(q, cos, sin)
        c_kv, k_pe = self._latent(kv_a, cos, sin)
        mask = None
        if cache is not None:
            c_kv, k_pe, mask = cache.attend(layer, positions, c_kv, k_pe)
        if absorb is None:
            absorb = cache is not None and cache.decodes and x.shape[1] <= ABSORB_MAX_TOKENS
        out = self._absorbed(q_nope, q_pe, c_kv, k_pe, mask) if absorb else self._naive(q_nope, q_pe, c_kv, k_pe, mask)
        return self.o_proj(out)

    def _naive(self, q_nope, q_pe, c_kv, k_pe, mask):
        """Materialise per-head K, V from the latents; mask None = causal over equal lengths."""
        B, H, T, _ = q_nope.shape
        S = c_kv.shape[1]
        kv = self.kv_b_proj(c_kv).view(B, S, H, self.d_h + self.d_v).transpose(1, 2)
        k_nope, v = kv.split([self.d_h, self.d_v], dim=-1)  # (B, H, S, d_h), (B, H, S, d_v)
        q = torch.cat([q_nope, q_pe], dim=-1)  # (B, H, T, d_h + d_r), contiguous
        k = torch.cat([k_nope, k_pe[:, None].expand(B, H, S, self.d_r)], dim=-1)
        if mask is None:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, scale=self.scale)
        else:
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None], scale=self.scale)
        return o.transpose(1, 2).reshape(B, T, H * self.d_v)

    def _absorbed(self, q_nope, q_pe, c_kv, k_pe, mask):
        """Attention in latent space: score = (W_uk^T q_nope) . c_kv + q_pe . k_pe."""
        B, H, T, _ = q_nope.shape
        S = c_kv.shape[1]
        w = self.kv_b_proj.weight.view(H, self.d_h + self.d_v, self.d_c)
        w_uk, w_uv = w[:, : self.d_h], w[:, self.d_h:]  # (H, d_h, d_c), (H, d_v, d_c)
        q_lat = torch.einsum("bhtd,hdc->bhtc", q_nope, w_uk)  # (B, H, T, d_c)
        scores = torch.einsum("bhtc,bsc->bhts", q_lat, c_kv) + torch.einsum("bhtr,bsr->bhts", q_pe, k_pe)
        scores = scores.float() * self.scale
        if mask is None:
            mask = torch.ones(T, S, dtype=torch.bool, device=c_kv.device).tril(S - T)[None]
        scores = scores.masked_fill(~mask[:, None], float("-inf"))
        p = scores.softmax(dim=-1).to(c_kv.dtype)
        ctx = torch.einsum("bhts,bsc->bthc", p, c_kv)  # (B, T, H, d_c): context stays latent
        return torch.einsum("bthc,hvc->bthv", ctx, w_uv).reshape(B, T, H * self.d_v)
