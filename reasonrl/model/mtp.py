"""Multi-token prediction modules [V3 section 2.2].

Module k (1-based) combines the previous depth's hidden state at position t with the embedding of
token t + k, runs one decoder block and predicts token t + k + 1 with the shared output head:
    h_k = block(eh_proj([enorm(emb(t_{i+k})) ; hnorm(h_{k-1})]))   (embedding first, as checkpoints)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layers import RMSNorm


class SharedHead(nn.Module):
    """Only the norm is owned; the head itself is the main model's lm_head (saved as a copy)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class MTPModule(nn.Module):
    def __init__(self, cfg: ModelConfig, block: nn.Module):
        super().__init__()
        d = cfg.hidden_size
        self.enorm = RMSNorm(d, cfg.rms_norm_eps)
        self.hnorm = RMSNorm(d, cfg.rms_norm_eps)
        self.eh_proj = nn.Linear(2 * d, d, bias=False)
        self.block = block
        self.shared_head = SharedHead(cfg)

    def forward(self, h_prev, emb_next, cos, sin, cache=None, positions=None):
        """h_prev, emb_next (B, T, d) aligned by position -> (h_k (B, T, d) pre-norm, load, aux)."""
        x = self.eh_proj(torch.cat([self.enorm(emb_next), self.hnorm(h_prev)], dim=-1))
        return self.block(x, cos, sin, cache, 0, positions)


def mtp_loss(mtp_logits: list[torch.Tensor], ids: torch.Tensor, weight: float,
             ignore_index: int = -100, labels: torch.Tensor | None = None) -> torch.Tensor:
    """(lambda / D) * sum_k CE_k. mtp_logits[k-1] (B, T-k, V): row t predicts ids[t+k+1], over
    the rows whose target `ids` holds (pass the inputs, or the inputs plus the next token, as packed
    pretraining windows do, so the last row is scored too). `labels`, if given, replaces ids as
    targets (e.g. -100 on prompt and pad tokens, as SFT needs)."""
    if not mtp_logits:
        return ids.new_zeros((), dtype=torch.float32)
    tgt = ids if labels is None else labels
    total = 0.0
    for k, lg in enumerate(mtp_logits, start=1):
        rows = min(lg.shape[1], tgt.shape[1] - k - 1)
        y = tgt[:, k + 1:k + 1 + rows]  # (B, rows)
        total = total + F.cross_entropy(lg[:, :rows].reshape(-1, lg.shape[-1]).float(), y.reshape(-1),
                                        ignore_index=ignore_index)
    return total * (weight / len(mtp_logits))
