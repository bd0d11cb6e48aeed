"""Data-parallel training under torchrun: the process group, gradient averaging, sharding.

    torchrun --nproc_per_node 2 -m reasonrl sft ...      # gloo on CPU, nccl on GPU

Every rank holds the whole model and its own slice of the global batch. Stages call the model
through methods such as `forward_train`, which bypass `DistributedDataParallel.forward` and so
its gradient hooks; the trainer therefore averages gradients explicitly after accumulation
(`all_reduce_gradients`), before clipping, which keeps every rank's weights identical. A
single process (WORLD_SIZE unset or 1) never creates a process group and runs exactly as before.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence, TypeVar

import torch

from reasonrl.ranks import local_rank, rank, world_size

T = TypeVar("T")


def active() -> bool:
    """True inside an initialised process group of more than one rank."""
    return torch.distributed.is_available() and torch.distributed.is_initialized() and world_size() > 1


@contextlib.contextmanager
def process_group() -> Iterator[None]:
    """Initialise the process group from the torchrun environment for the duration of a stage;
    a no-op for one process or when an enclosing stage (distill's parts) already holds one."""
    if world_size() <= 1 or torch.distributed.is_initialized():
        yield
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    torch.distributed.init_process_group(backend=backend)
    try:
        yield
    finally:
        torch.distributed.destroy_process_group()


def _device() -> torch.device:
    # nccl moves only CUDA tensors; gloo only CPU ones
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of `tensor` over ranks (in place when it lives on the backend's device); identity
    without a process group."""
    if not active():
        return tensor
    moved = tensor.to(_device())
    torch.distributed.all_reduce(moved)
    if moved is not tensor:
        tensor.copy_(moved.to(tensor.device))
    return tensor


def all_reduce_gradients(params: Sequence[torch.nn.Parameter]) -> None:
    """Average gradients over ranks in one flat buffer. A parameter without a gradient on some rank
    (an MoE expert no token of that rank's slice reached) gets zeros there; one without a gradient
    on every rank keeps `grad=None`, so AdamW skips it exactly as a single process would."""
    if not active() or not params:
        return
    has = torch.tensor([float(p.grad is not None) for p in params])  # (P,)
    all_reduce_sum(has)
    used = [p for p, h in zip(params, has.tolist()) if h > 0]
    for p in used:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    if not used:
        return
    flat = torch.cat([p.grad.reshape(-1).to(torch.float32) for p in used])  # (sum of numels,)
    all_reduce_sum(flat).div_(world_size())
    offset = 0
    for p in used:
        n = p.grad.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def all_gather_objects(value: T) -> list[T]:
    """Every rank's `value`, in rank order (`[value]` for one process)."""
    if not active():
        return [value]
    out: list[Any] = [None] * world_size()
    torch.distributed.all_gather_object(out, value)
    return out


def mean_over_ranks(metrics: dict[str, Any]) -> dict[str, Any]:
    """Numeric metrics averaged over ranks (the logged row describes the global batch rather than
    rank 0's slice); keys a rank lacks are averaged over the ranks that have them."""
    if not active():
        return metrics
    rows = all_gather_objects({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, torch.Tensor))})
    out = dict(metrics)
    for key in rows[0].keys() | set().union(*rows):
        values = [row[key] for row in rows if key in row]
        out[key] = sum(values) / len(values)
    return out


def shard(items: Sequence[T], what: str = "items") -> list[T]:
    """This rank's contiguous slice of `items` (whose length `check_divisible` has vetted)."""
    n, w = len(items), world_size()
    if n % w:
        raise ValueError(f"{n} {what} do not split evenly over {w} ranks")
    size = n // w
    return list(items[rank() * size:(rank() + 1) * size])


def rank_slice(n: int) -> slice:
    """The rows of an n-row global batch that this rank owns."""
    size = n // world_size()
    return slice(rank() * size, (rank() + 1) * size)


def check_divisible(stage: str, **values: int) -> None:
    """Refuse, in one line and before anything is written, a global batch that does not split
    evenly over the ranks (each key: `dotted_key=value`, the key spelled with `__` for dots)."""
    w = world_size()
    if w <= 1:
        return
    for key, value in values.items():
        if value % w:
            raise ValueError(f"{stage}: {key.replace('__', '.')}={value} does not split over WORLD_SIZE={w} ranks: "
                             f"use a multiple of {w}")


def barrier() -> None:
    if active():
        torch.distributed.barrier()
