"""Optional copies of metrics.jsonl rows for TensorBoard and W&B (offline), enabled with
``run.log_to: [tensorboard, wandb]``. metrics.jsonl stays the record; these are views of it.

Each backend is an extra (``pip install 'reasonrl[tensorboard]'`` / ``'reasonrl[wandb]'``) and is
imported only when enabled. A missing one fails when the stage starts, with one line naming the
extra, before anything is written. Writers open on the first row, so a run refused later (a
changed config) leaves no event files behind.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable, Sequence

SINKS = ("tensorboard", "wandb")


def require(module: str, extra: str) -> Any:
    """Import ``module`` or fail with one line that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"run.log_to has {extra!r} but {module} is not installed: "
                          f"pip install 'reasonrl[{extra}]' ({exc})") from None


def _scalars(row: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}


class TensorBoardSink:
    """Scalars to ``<run>/tensorboard`` (torch's SummaryWriter, which needs the tensorboard package)."""

    def __init__(self, log_dir: str | Path, writer_factory: Callable[[str], Any] | None = None):
        if writer_factory is None:
            require("tensorboard", "tensorboard")
        self.log_dir, self._factory, self._writer = str(log_dir), writer_factory, None

    def log(self, row: dict[str, Any]) -> None:
        if self._writer is None:
            factory = self._factory
            if factory is None:
                from torch.utils.tensorboard import SummaryWriter as factory
            self._writer = factory(self.log_dir)
        step = int(row.get("step") or 0)
        for key, value in _scalars(row).items():
            self._writer.add_scalar(key, value, step)
        self._writer.flush()  # a crashed run keeps every logged step

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class WandbSink:
    """W&B in offline mode under ``<run>/wandb`` (``wandb sync`` uploads it later, if ever)."""

    def __init__(self, run_dir: str | Path, name: str):
        self._wandb = require("wandb", "wandb")
        self.run_dir, self.name, self._run = str(run_dir), name, None

    def log(self, row: dict[str, Any]) -> None:
        if self._run is None:
            Path(self.run_dir).mkdir(parents=True, exist_ok=True)
            self._run = self._wandb.init(mode="offline", dir=self.run_dir, name=self.name, project="reasonrl")
        self._run.log(_scalars(row), step=int(row.get("step") or 0))

    def close(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None


def open_sinks(names: Sequence[str], run_dir: str | Path, run_name: str) -> list[Any]:
    """The sinks ``run.log_to`` asks for (an unknown name or a missing extra fails here)."""
    sinks: list[Any] = []
    for name in dict.fromkeys(names):
        if name == "tensorboard":
            sinks.append(TensorBoardSink(Path(run_dir) / "tensorboard"))
        elif name == "wandb":
            sinks.append(WandbSink(run_dir, run_name))
        else:
            raise ValueError(f"run.log_to: unknown sink {name!r}; known: {', '.join(SINKS)}")
    return sinks
