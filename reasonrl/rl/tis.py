"""Truncated importance sampling (TIS) between the sampler's and the trainer's log-probs.

An inference engine (vLLM) and the training model disagree numerically on the log-probs of the
same tokens (different kernels, precisions, and for MoE different routing). The rollouts come
from the sampler's distribution, while the policy gradient is computed under the trainer's, so
each token's surrogate is reweighted by the capped ratio (Yao et al. 2025, "Your efficient RL
framework secretly brings you off-policy RL training"):

    w_t = min(exp(logp_trainer_t - logp_sampler_t), cap)        (no gradient)

    weights, metrics = tis_weights(trainer_logp, sampler_logp, mask, cap=2.0)

The mismatch itself is worth watching every step (a growing |delta logp| means the engine's
weights are stale or its numerics drift), so the metrics are returned even when the cap is None.
"""

from __future__ import annotations

import torch
from torch import Tensor


def tis_weights(trainer_logp: Tensor, sampler_logp: Tensor, mask: Tensor,
                cap: float | None) -> tuple[Tensor | None, dict[str, float]]:
    """Per-token weights (B, T), 1 outside `mask` (None when `cap` is None: correction off), and
    the mismatch metrics over the real tokens:

    - ``mismatch/abs_logp_diff``: mean |logp_trainer - logp_sampler|;
    - ``mismatch/ratio_p50``, ``/ratio_p95``, ``/ratio_max``: quantiles of the uncapped ratio
      (linear interpolation, as ``torch.quantile``);
    - ``mismatch/capped_frac``: fraction of tokens whose ratio exceeded the cap (0 without one).
    """
    with torch.no_grad():
        delta = trainer_logp.detach().float() - sampler_logp.detach().float()  # (B, T)
        real = mask > 0
        ratio = torch.exp(delta)
        metrics = mismatch_metrics(delta[real], ratio[real], cap)
        if cap is None:
            return None, metrics
        # exp(0) is exactly 1, so identical log-probs leave every token's loss bit-for-bit unchanged
        weights = torch.where(real, ratio.clamp(max=cap), torch.ones_like(ratio))
    return weights, metrics


def mismatch_metrics(delta: Tensor, ratio: Tensor, cap: float | None) -> dict[str, float]:
    """The logged mismatch from the real tokens' log-prob differences and ratios (1-D)."""
    if delta.numel() == 0:  # no completion token this batch: nothing disagrees
        return {"mismatch/abs_logp_diff": 0.0, "mismatch/ratio_p50": 1.0, "mismatch/ratio_p95": 1.0,
                "mismatch/ratio_max": 1.0, "mismatch/capped_frac": 0.0}
    q = torch.quantile(ratio.double(), torch.tensor([0.5, 0.95], dtype=torch.float64, device=ratio.device))
    capped = float((ratio > cap).float().mean()) if cap is not None else 0.0
    return {"mismatch/abs_logp_diff": float(delta.abs().mean()), "mismatch/ratio_p50": float(q[0]),
            "mismatch/ratio_p95": float(q[1]), "mismatch/ratio_max": float(ratio.max()),
            "mismatch/capped_frac": capped}
