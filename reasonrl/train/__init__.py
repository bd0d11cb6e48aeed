"""Training machinery shared by every stage: the optimisation loop and atomic checkpoints.

Names are exported lazily so that importing the package does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "OptimConfig": "loop", "Trainer": "loop", "make_optimizer": "loop", "lr_at": "loop",
    "save_checkpoint": "checkpoint", "latest_checkpoint": "checkpoint", "load_trainer_state": "checkpoint",
    "restore_rng": "checkpoint", "NonFiniteWeightsError": "checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'reasonrl.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"reasonrl.train.{_EXPORTS[name]}"), name)
