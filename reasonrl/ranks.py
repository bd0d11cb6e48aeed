"""Process-group facts every other module asks about: rank, world size, main process.

Bottom floor: imports nothing of the package. Everything reads the torchrun environment
variables, so single-process runs need no set-up.
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
