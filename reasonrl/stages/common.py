"""Config sections and set-up shared by every stage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonrl.config import dump_yaml, opt


@dataclass
class RunSection:
    name: str = opt("run", "run name: outputs go to <dir>/<name>/")
    dir: str = opt("runs", "parent directory of run directories")
    seed: int = opt(0, "seed for initialisation, data order and sampling (per-step randomness derives from (seed, step))")
    threads: int = opt(2, "torch CPU threads (fixed, so results are reproducible)")
    quiet: bool = opt(False, "print nothing but errors")

    @property
    def path(self) -> Path:
        return Path(self.dir) / self.name


@dataclass
class ModelSpec:
    preset: str = opt("tiny", "native model preset (tiny | small | deepseek-v3) used when `path` is empty")
    path: str | None = opt(None, "local checkpoint or transformers model directory (overrides `preset`)")
    gguf_file: str | None = opt(None, "GGUF file name inside `path` (e.g. SmolLM2-135M-Instruct.Q4_1.gguf)")
    overrides: dict[str, Any] = opt(factory=dict, help="ModelConfig fields to change on top of the preset, e.g. {num_hidden_layers: 2}")


@dataclass
class CheckpointSection:
    every: int = opt(100, "save a checkpoint every N steps (and at the end)")
    keep_last: int = opt(2, "number of complete checkpoints kept")


@dataclass
class StageResult:
    outputs: dict[str, str]
    metrics: dict[str, Any]


def prepare_run(cfg: Any, stage: str):
    """Create the run directory, record the resolved config and environment, fix threads."""
    import torch

    from reasonrl.runlog import Run

    torch.set_num_threads(cfg.run.threads)
    run = Run(cfg.run.path, quiet=cfg.run.quiet, stage=stage)
    run.write_text("config.yaml", f"# resolved config of `reasonrl {stage}`; re-run with: reasonrl {stage} <this file>\n"
                   + dump_yaml(cfg))
    run.write_environment()
    return run
