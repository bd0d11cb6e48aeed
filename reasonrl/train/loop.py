"""The optimisation step every stage shares: accumulation, clipping, a non-finite guard,
the warmup + cosine schedule and the MoE auxiliary-loss-free bias update.

Stages own their data and their loss; they hand `Trainer.step` a loss function and the
microbatches of one optimizer step. Per-step randomness comes from `(seed, step)` so a resumed
run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch

from reasonrl.config import opt
from reasonrl.errors import StageError
from reasonrl.runlog import Run
from reasonrl.train import distributed, fsdp

LossFn = Callable[[torch.nn.Module, Any], "tuple[torch.Tensor, dict[str, Any], torch.Tensor | None]"]


@dataclass
class OptimConfig:
    lr: float = opt(3e-4, "peak learning rate", gt=0)
    weight_decay: float = opt(0.1, "AdamW weight decay (matrices only; never norms, biases or 1-D params)", ge=0)
    betas: list[float] = opt(factory=lambda: [0.9, 0.95], help="AdamW betas [beta1, beta2]", ge=0, lt=1, length=2)
    eps: float = opt(1e-8, "AdamW epsilon", gt=0)
    warmup_steps: int = opt(0, "linear warmup steps before the cosine decay", ge=0)
    total_steps: int = opt(0, "length of the schedule in optimizer steps (0: the stage's own step count)", ge=0)
    min_lr_ratio: float = opt(0.1, "the cosine decays to lr * min_lr_ratio at total_steps", ge=0, le=1)
    grad_clip: float = opt(1.0, "clip the global gradient norm to this value (0 disables clipping)", ge=0)
    grad_accum: int = opt(1, "microbatches accumulated into one optimizer step", ge=1)
    moe_bias_gamma: float = opt(0.001, "MoE auxiliary-loss-free bias update speed (0 disables it)", ge=0)
    skip_nonfinite: bool = opt(True, "skip the optimizer step when the loss or gradient norm is NaN/inf")
    max_consecutive_skips: int = opt(5, "stop the run (exit 1) after this many skipped steps in a row", ge=1)
    activation_checkpointing: bool = opt(False, "recompute each decoder block's activations in backward instead of "
                                         "keeping them: less memory for ~1/3 more training compute (not with "
                                         "rl.share_prompt or run.strategy=fsdp)")


# ---- schedule and optimizer ---------------------------------------------------------------------
def lr_at(step: int, cfg: OptimConfig) -> float:
    """Learning rate of the optimizer update with 0-based index `step`.

    Warmup is linear and starts at lr / warmup_steps rather than 0, so no step is wasted at lr 0.
    Afterwards a cosine runs from lr (at step == warmup_steps) to lr * min_lr_ratio (at
    step == total_steps) and stays there.
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.total_steps <= cfg.warmup_steps:
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / (cfg.total_steps - cfg.warmup_steps))
    floor = cfg.min_lr_ratio
    return cfg.lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _no_decay(name: str, param: torch.nn.Parameter) -> bool:
    # Norm gains and biases set scales and offsets; shrinking them towards 0 only hurts.
    return param.ndim < 2 or name.endswith(".bias") or "norm" in name.lower()


def make_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only. Buffers (e.g. the MoE
    `e_score_correction_bias`) and frozen parameters are never optimised."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if _no_decay(name, param) else decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay, "name": "decay"},
              {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"}]
    groups = [g for g in groups if g["params"]]
    betas = (float(cfg.betas[0]), float(cfg.betas[1]))
    return torch.optim.AdamW(groups, lr=lr_at(0, cfg), betas=betas, eps=cfg.eps)


# ---- distributed helpers ------------------------------------------------------------------------
def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return model.module
    return model


def _as_float(value: Any) -> float:
    if not isinstance(value, torch.Tensor):
        return float(value)
    return float(fsdp.local_value(value.detach()).float().item())  # a sharded grad norm: its whole value


def load_max_over_mean(load: torch.Tensor) -> float:
    """Mean over MoE layers of (busiest expert's tokens / mean tokens per expert); 1.0 is perfect."""
    load = load.detach().float().reshape(-1, load.shape[-1])
    ratio = load.max(dim=-1).values / load.mean(dim=-1).clamp_min(1e-9)
    return float(ratio.mean().item())


# ---- the trainer --------------------------------------------------------------------------------
class Trainer:
    """One optimizer step per `step()` call over the microbatches it is given.

    `step_count` counts calls (skipped ones included), so the learning-rate schedule and the
    stage's data cursor stay aligned whatever the guard does.
    """

    def __init__(self, model: torch.nn.Module, cfg: OptimConfig, run: Run | None = None, strategy: str = "ddp"):
        """strategy: how ranks share the work under torchrun (ignored by one process): "ddp"
        (whole model per rank, gradients all-reduced) or "fsdp" (`model` sharded in place, FSDP2)."""
        if cfg.activation_checkpointing:
            if strategy == "fsdp" and distributed.active():
                raise ValueError("optim.activation_checkpointing is not supported with run.strategy=fsdp (yet)")
            if not hasattr(_unwrap(model), "set_activation_checkpointing"):
                raise ValueError(f"optim.activation_checkpointing: {type(model).__name__} does not support it")
            _unwrap(model).set_activation_checkpointing(True)
        if strategy == "fsdp" and distributed.active():
            fsdp.shard_model(model)
        self.model = model
        self.sharded = fsdp.is_sharded(model)
        self.cfg = cfg
        self.run = run if run is not None else Run.null()
        self.optimizer = make_optimizer(_unwrap(model), cfg)
        self.step_count = 0
        self.skipped_steps = 0
        self.consecutive_skips = 0

    @property
    def params(self) -> list[torch.nn.Parameter]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def step(self, loss_fn: LossFn, microbatches: Iterable[Any]) -> dict[str, float]:
        batches = list(microbatches)
        if not batches:
            raise ValueError("Trainer.step needs at least one microbatch")
        self.optimizer.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        loss, sums, load = self._accumulate(loss_fn, batches)
        if distributed.active():  # every rank then holds the global batch's gradient and MoE load
            # FSDP reduce-scattered each unit's gradients after its backward; the rest is whole per rank
            distributed.all_reduce_gradients(fsdp.replicated(self.params) if self.sharded else self.params)
            load = None if load is None else distributed.all_reduce_sum(load.clone())
        t1 = time.perf_counter()  # the all-reduce counts as backward: it finishes the gradient
        grad_norm = self._clip_grad_norm()
        lr = lr_at(self.step_count, self.cfg)
        skipped = self.cfg.skip_nonfinite and not self._all_finite(loss, grad_norm)
        if skipped:
            self._skip(loss, grad_norm)
        else:
            self._apply(lr, load)
            self.consecutive_skips = 0
        self.step_count += 1
        metrics = {k: v / len(batches) for k, v in sums.items()}
        metrics.update(loss=loss, grad_norm=grad_norm, lr=lr, skipped=float(skipped),
                       skipped_steps=self.skipped_steps)
        # seconds: forward + backward of every microbatch, then clipping + the update itself
        metrics.update({"time/forward_backward": t1 - t0, "time/optimizer": time.perf_counter() - t1})
        if load is not None:
            metrics["moe/load_max_over_mean"] = load_max_over_mean(load)
        return distributed.mean_over_ranks(metrics)

    def _accumulate(self, loss_fn: LossFn, batches: list[Any]) -> tuple[float, dict[str, float], torch.Tensor | None]:
        """Backward over every microbatch with loss / n, so the gradient is that of the mean loss."""
        loss_total, sums, load_total = 0.0, {}, None
        for index, batch in enumerate(batches):
            with self._sync_context(last=index == len(batches) - 1):
                loss, metrics, load = loss_fn(self.model, batch)
                (loss / len(batches)).backward()
            loss_total += _as_float(loss)
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + _as_float(value)
            if load is not None:
                load = load.detach()
                load_total = load if load_total is None else load_total + load
        return loss_total / len(batches), sums, load_total

    def _sync_context(self, last: bool):
        # DDP all-reduces on every backward; accumulating locally until the last one saves traffic.
        if self.sharded:
            fsdp.set_gradient_sync(self.model, last)
            return contextlib.nullcontext()
        if isinstance(self.model, torch.nn.parallel.DistributedDataParallel) and not last:
            return self.model.no_sync()
        return contextlib.nullcontext()

    def _clip_grad_norm(self) -> float:
        params = [p for p in self.params if p.grad is not None]
        if not params:
            return 0.0
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        if self.sharded:
            return fsdp.clip_grad_norm(params, max_norm)
        return _as_float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    def _all_finite(self, loss: float, grad_norm: float) -> bool:
        # Every rank must take the same decision, or their weights drift apart.
        bad = torch.tensor(float(not (math.isfinite(loss) and math.isfinite(grad_norm))))
        return distributed.all_reduce_sum(bad).item() == 0

    def _skip(self, loss: float, grad_norm: float) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.skipped_steps += 1
        self.consecutive_skips += 1
        if self.consecutive_skips >= self.cfg.max_consecutive_skips:
            raise StageError(f"training diverged: {self.consecutive_skips} optimizer steps in a row had a non-finite "
                             f"loss ({loss}) or gradient norm ({grad_norm}); the last checkpoint is kept (lower "
                             "optim.lr or raise optim.max_consecutive_skips)")
        self.run.warn(f"step {self.step_count}: non-finite loss ({loss}) or grad norm ({grad_norm}); "
                      f"optimizer step skipped ({self.skipped_steps} skipped so far)")

    def _apply(self, lr: float, load: torch.Tensor | None) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        inner = _unwrap(self.model)
        if load is not None and self.cfg.moe_bias_gamma > 0 and hasattr(inner, "update_moe_bias"):
            with torch.no_grad():  # the load is already summed over ranks: every rank moves the same bias
                inner.update_moe_bias(load, self.cfg.moe_bias_gamma)

    def state_dict(self) -> dict[str, Any]:
        # sharded: name-keyed DTensor shards, which checkpoint.py writes as a distributed checkpoint
        optimizer = fsdp.optimizer_state(self.model, self.optimizer) if self.sharded else self.optimizer.state_dict()
        return {"optimizer": optimizer, "step": self.step_count,
                "skipped_steps": self.skipped_steps, "consecutive_skips": self.consecutive_skips}

    def load_state_dict(self, state: dict[str, Any], sharded_dir: Any = None) -> None:
        """`sharded_dir`: the distributed checkpoint to read when the state says the optimizer is
        there (an FSDP run saved it); any rank count and strategy can resume any checkpoint."""
        saved = state["optimizer"]
        if isinstance(saved, str):  # checkpoint.SHARDED_OPTIMIZER
            fsdp.load_sharded(sharded_dir, self.model, self.optimizer)
        elif self.sharded:
            fsdp.load_full_optimizer(self.optimizer, saved)
        else:
            self.optimizer.load_state_dict(saved)
        self.step_count = int(state["step"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.consecutive_skips = int(state.get("consecutive_skips", 0))
