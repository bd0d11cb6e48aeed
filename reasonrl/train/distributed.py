"""Process-group facts every other module asks about: rank, world size, main process.

Everything reads the torchrun environment variables, so single-process runs need no set-up
and multi-process runs (torchrun, gloo on CPU / nccl on GPU) need no code changes elsewhere.
"""

from __future__ import annotations

import os


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def init_process_group_if_needed() -> bool:
    """Start torch.distributed when launched by torchrun; returns True when distributed."""
    if world_size() == 1:
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return True
