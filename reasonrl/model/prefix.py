"""Training-time attention caches that let many rows share one prompt's computation.

RL trains on groups of G completions of the same prompt. `PrefixRecorder` runs the distinct
prompts once and keeps every layer's latents (with their autograd history); `SharedPrefix` then
runs each row's completion attending to its prompt's latents, gathered per row, so the gradient
of every prompt token is the sum over the rows that read it. Both follow the `attend` protocol of
`LatentCache`; neither writes in place, so autograd sees ordinary tensor ops.
"""

from __future__ import annotations

import torch


class PrefixRecorder:
    """Prompt pass: causal attention over the prompts themselves, latents kept per layer."""

    decodes = False  # a training forward: always the naive (materialised K/V) path

    def __init__(self):
        self.layers: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def attend(self, layer: int, positions: torch.Tensor, c_kv: torch.Tensor, k_pe: torch.Tensor):
        self.layers[layer] = (c_kv, k_pe)  # (U, P, d_c), (U, P, d_r)
        return c_kv, k_pe, None  # None: causal over the P tokens


class SharedPrefix:
    """Completion pass: row r attends to the prompt slots of prompt `of_row[r]` that `key_mask`
    marks valid (its true prompt length), then causally to its own completion tokens."""

    decodes = False

    def __init__(self, recorder: PrefixRecorder, of_row: torch.Tensor, key_mask: torch.Tensor):
        self.recorder, self.of_row, self.key_mask = recorder, of_row, key_mask  # (N,), (N, P) bool

    def attend(self, layer: int, positions: torch.Tensor, c_kv: torch.Tensor, k_pe: torch.Tensor):
        p_kv, p_pe = self.recorder.layers[layer]
        N, T = c_kv.shape[:2]
        c_kv = torch.cat([p_kv.index_select(0, self.of_row), c_kv], dim=1)  # (N, P + T, d_c)
        k_pe = torch.cat([p_pe.index_select(0, self.of_row), k_pe], dim=1)  # (N, P + T, d_r)
        causal = torch.ones(T, T, dtype=torch.bool, device=c_kv.device).tril()
        mask = torch.cat([self.key_mask[:, None, :].expand(N, T, -1), causal.expand(N, T, T)], dim=-1)
        return c_kv, k_pe, mask  # mask (N, T, P + T)
