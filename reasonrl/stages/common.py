"""Config sections and set-up shared by every stage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reasonrl.config import opt


@dataclass
class RunSection:
    name: str = opt("run", "run name: outputs go to <dir>/<name>/")
    dir: str = opt("runs", "parent directory of run directories")
    seed: int = opt(0, "seed for initialisation, data order and sampling (per-step randomness derives from (seed, step))")
    threads: int = opt(2, "torch CPU threads (fixed, so results are reproducible)", ge=1)
    quiet: bool = opt(False, "print nothing but errors")
    allow_config_change: bool = opt(False, "resume a run whose config.yaml differs from this config (the changed "
                                    "keys are listed); without it such a resume is refused")
    log_to: list[Literal["tensorboard", "wandb"]] = opt(factory=list, help="also log metrics to TensorBoard "
                                                        "(<run>/tensorboard) and/or W&B offline (<run>/wandb); "
                                                        "extras: reasonrl[tensorboard], reasonrl[wandb]")

    @property
    def path(self) -> Path:
        return Path(self.dir) / self.name


@dataclass
class ModelSpec:
    preset: Literal["tiny", "small", "deepseek-v3"] = opt("tiny", "native model preset used when `path` is empty")
    path: str | None = opt(None, "local checkpoint or transformers model directory (overrides `preset`)")
    gguf_file: str | None = opt(None, "GGUF file name inside `path` (e.g. SmolLM2-135M-Instruct.Q4_1.gguf)")
    overrides: dict[str, Any] = opt(factory=dict, help="ModelConfig fields to change on top of the preset, e.g. {num_hidden_layers: 2}")


@dataclass
class CheckpointSection:
    every: int = opt(100, "save a checkpoint every N steps (and at the end)", ge=1)
    keep_last: int = opt(2, "number of complete checkpoints kept (0: all)", ge=0)


@dataclass
class StageResult:
    outputs: dict[str, str]
    metrics: dict[str, Any]
    reused: bool = False  # True when the stage was already complete and nothing ran
