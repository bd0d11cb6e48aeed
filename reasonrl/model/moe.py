"""DeepSeekMoE: sigmoid router with group-limited top-k, routed + shared SwiGLU experts,
auxiliary-loss-free balancing bias and the complementary sequence-wise balance loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layers import SwiGLU


class Gate(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_experts, self.top_k = cfg.n_routed_experts, cfg.num_experts_per_tok
        self.n_group, self.topk_group = cfg.n_group, cfg.topk_group
        self.norm_topk_prob, self.scale = cfg.norm_topk_prob, cfg.routed_scaling_factor
        self.weight = nn.Parameter(torch.empty(self.n_experts, cfg.hidden_size))
        # only chooses experts, never weighs them; updated outside autograd; fp32 so gamma steps survive
        self.register_buffer("e_score_correction_bias", torch.zeros(self.n_experts, dtype=torch.float32))

    def forward(self, x: torch.Tensor):
        """x (N, d) -> gate weights (N, K) fp32, expert ids (N, K), affinities (N, E) fp32."""
        with torch.autocast(x.device.type, enabled=False):  # routing stays fp32 under autocast
            scores = F.linear(x.float(), self.weight.float()).sigmoid()  # (N, E)
        biased = scores + self.e_score_correction_bias
        if self.n_group > 1:
            biased = self._limit_groups(biased)
        idx = biased.topk(self.top_k, dim=-1, sorted=False).indices  # (N, K)
        w = scores.gather(1, idx)
        if self.norm_topk_prob:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        return w * self.scale, idx, scores

    def _apply(self, fn, recurse=True):
        # model.to(bf16) must not round the bias: its gamma-sized steps would vanish
        bias = self.e_score_correction_bias
        super()._apply(fn, recurse)
        self.e_score_correction_bias = bias.to(self.e_score_correction_bias.device)
        return self

    def _limit_groups(self, biased: torch.Tensor) -> torch.Tensor:
        # group score = sum of its two best biased affinities; dropped groups get -inf (as the
        # reference code and transformers 5 do) so they can never be picked
        N, G = biased.shape[0], self.n_group
        grouped = biased.view(N, G, -1)
        gscore = grouped.topk(min(2, grouped.shape[-1]), dim=-1).values.sum(-1)  # (N, G)
        keep = torch.zeros_like(gscore, dtype=torch.bool)
        keep.scatter_(1, gscore.topk(self.topk_group, dim=-1, sorted=False).indices, True)
        return grouped.masked_fill(~keep[..., None], float("-inf")).view(N, -1)


def _grouped_mm_ok(x: torch.Tensor, w: torch.Tensor) -> bool:
    """torch's grouped GEMM (one kernel for all experts) needs 16-byte aligned rows and pointers;
    on CUDA we only trust it for bf16."""
    if not hasattr(F, "grouped_mm") or x.dtype != w.dtype:
        return False
    if x.device.type == "cuda" and x.dtype != torch.bfloat16:
        return False
    n = 16 // x.element_size()
    return (x.shape[-1] % n == 0 and w.shape[-2] % n == 0 and x.data_ptr() % 16 == 0
            and w.data_ptr() % 16 == 0)


def grouped_linear(x: torch.Tensor, w: torch.Tensor, offs: torch.Tensor) -> torch.Tensor:
    """x (S, in) sorted by expert, offs (E,) int32 cumulative counts; w (E, out, in) -> (S, out)."""
    if _grouped_mm_ok(x, w):
        return F.grouped_mm(x, w.transpose(-2, -1), offs=offs)
    # unbind, not w[e]: one backward buffer for all experts instead of one full-size zero tensor each
    bounds = [0] + offs.tolist()
    return torch.cat([F.linear(x[a:b], we) for a, b, we in zip(bounds[:-1], bounds[1:], w.unbind(0))])


class Experts(nn.Module):
    """Routed experts as stacked weights (E, 2I, d) and (E, d, I): tokens are sorted by expert and
    all experts run as one grouped GEMM (a dense matmul per expert where that is unavailable)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        E, d, inter = cfg.n_routed_experts, cfg.hidden_size, cfg.moe_intermediate_size
        self.gate_up_proj = nn.Parameter(torch.empty(E, 2 * inter, d))  # rows [gate | up]
        self.down_proj = nn.Parameter(torch.empty(E, d, inter))

    def forward(self, x: torch.Tensor, w: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        # x (N, d); w, idx (N, K)
        N, K = idx.shape
        E = self.gate_up_proj.shape[0]
        flat = idx.reshape(-1)
        order = flat.argsort()
        offs = torch.bincount(flat, minlength=E).cumsum(0).to(torch.int32)
        xs = x[order // K]  # (N*K, d), grouped by expert
        g, u = grouped_linear(xs, self.gate_up_proj, offs).chunk(2, dim=-1)
        ys = grouped_linear(F.silu(g) * u, self.down_proj, offs) * w.reshape(-1)[order, None].to(x.dtype)
        # back to (token, choice) order, then sum the K choices (deterministic, unlike index_add_)
        out = torch.empty_like(ys)
        out[order] = ys
        return out.view(N, K, -1).sum(1)


def sequence_balance_loss(scores: torch.Tensor, idx: torch.Tensor, alpha: float) -> torch.Tensor:
    """alpha * sum_i f_i P_i per sequence, averaged over sequences [V3 eq. 17-20].
    scores (B, T, E) unbiased affinities; idx (B, T, K) chosen experts."""
    B, T, E = scores.shape
    K = idx.shape[-1]
    counts = torch.zeros(B, E, device=scores.device).scatter_add_(
        1, idx.reshape(B, -1), torch.ones(B, T * K, device=scores.device))
    f = counts * (E / (K * T))
    P = (scores / scores.sum(-1, keepdim=True)).mean(1)  # (B, E)
    return alpha * (f * P).sum(-1).mean()


class MoE(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate = Gate(cfg)
        self.experts = Experts(cfg)
        self.shared_experts = (SwiGLU(cfg.hidden_size, cfg.moe_intermediate_size * cfg.n_shared_experts)
                               if cfg.n_shared_experts else None)
        self.aux_loss_alpha = cfg.aux_loss_alpha

    def forward(self, x: torch.Tensor):
        """x (B, T, d) -> (y (B, T, d), load (E,) token counts, sequence balance loss or None)."""
        B, T, d = x.shape
        w, idx, scores = self.gate(x.reshape(-1, d))
        y = self.experts(x.reshape(-1, d), w, idx).view(B, T, d)
        if self.shared_experts is not None:
            y = y + self.shared_experts(x)
        load = torch.bincount(idx.reshape(-1), minlength=scores.shape[-1]).float()
        aux = None
        if self.aux_loss_alpha > 0 and torch.is_grad_enabled():
            aux = sequence_balance_loss(scores.view(B, T, -1), idx.view(B, T, -1), self.aux_loss_alpha)
        return y, load, aux

    @torch.no_grad()
    def update_bias(self, load: torch.Tensor, gamma: float) -> None:
        """Aux-loss-free balancing: raise the bias of under-loaded experts, lower overloaded ones."""
        load = load.to(self.gate.e_score_correction_bias.device).float()
        self.gate.e_score_correction_bias += gamma * torch.sign(load.mean() - load)
