"""Where and in what precision a stage computes: the `compute` config section.

    compute = cfg.compute                       # device: auto | cpu | cuda, dtype: fp32 | bf16
    model.to(compute.torch_device())
    with compute.autocast():                    # bf16 autocast on GPU; a no-op for fp32
        loss = ...

Weights (and so the optimizer's state) stay fp32 whatever `dtype` says: bf16 is autocast only,
fp32 master weights, so an update is never lost to bf16 rounding. CPU runs default to fp32 and
refuse bf16 unless `allow_cpu_bf16` is set: bf16 matmul is about 100x slower than fp32 on CPUs
without native bf16 units, which silently turns a minute's run into hours.
Status: the CUDA path is tested by the `gpu`-marked tests only where a GPU is visible.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

from reasonrl.config import FieldProblem, opt

Device = Literal["auto", "cpu", "cuda"]
Dtype = Literal["fp32", "bf16"]


@dataclass
class ComputeSection:
    device: Device = opt("auto", "auto (cuda when a GPU is visible, else cpu), cpu or cuda")
    dtype: Dtype = opt("fp32", "fp32, or bf16: autocast with fp32 master weights (GPU; refused on CPU unless "
                       "allow_cpu_bf16)")
    allow_cpu_bf16: bool = opt(False, "accept dtype=bf16 on CPU (bf16 matmul is ~100x slower there than fp32)")

    def __post_init__(self) -> None:
        # checked when the config loads, so a bad combination is refused before anything is written
        name, problem = compute_problem(self.device, self.dtype, self.allow_cpu_bf16, cuda_available())
        if problem:
            raise FieldProblem(name, problem)

    def resolved_device(self) -> str:
        return ("cuda" if cuda_available() else "cpu") if self.device == "auto" else self.device

    def torch_device(self):
        import torch

        return torch.device(self.resolved_device())

    def autocast(self):
        """bf16 autocast on the resolved device, or nothing at fp32."""
        if self.dtype == "fp32":
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=self.resolved_device(), dtype=torch.bfloat16)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def compute_problem(device: str, dtype: str, allow_cpu_bf16: bool, has_cuda: bool) -> tuple[str, str | None]:
    """(key, why this combination cannot run here) or (key, None)."""
    if device == "cuda" and not has_cuda:
        return "device", "cuda was asked for and no CUDA device is visible (use compute.device=auto or cpu)"
    on_cpu = device == "cpu" or (device == "auto" and not has_cuda)
    if dtype == "bf16" and on_cpu and not allow_cpu_bf16:
        return "dtype", ("bf16 on CPU is ~100x slower than fp32 here: use compute.dtype=fp32, or set "
                         "compute.allow_cpu_bf16=true to run it anyway")
    return "dtype", None
