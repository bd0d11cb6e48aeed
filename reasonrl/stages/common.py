"""Config sections and set-up shared by every stage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reasonrl.config import FieldProblem, opt


@dataclass
class RunSection:
    name: str = opt("run", "run name: outputs go to <dir>/<name>/")
    dir: str = opt("runs", "parent directory of run directories")
    seed: int = opt(0, "seed for initialisation, data order and sampling (per-step randomness derives from (seed, step))")
    threads: int = opt(2, "torch CPU threads (fixed, so results are reproducible)", ge=1)
    strategy: Literal["ddp", "fsdp"] = opt("ddp", "data parallelism under torchrun (one process ignores it): ddp "
                                           "(each rank holds the whole model, gradients all-reduced) or fsdp "
                                           "(FSDP2: weights, gradients and optimizer state sharded over ranks)")
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

    def __post_init__(self) -> None:
        # A shape that cannot make a model must fail when the config loads, not after the
        # stage has trained and written a tokenizer into the run directory.
        if self.path is None and self.overrides:
            problem = fresh_model_problem(self.preset, self.overrides)
            if problem:
                raise FieldProblem("overrides", problem)


TOKENIZER_KEYS = ("vocab_size", "pad_token_id", "bos_token_id", "eos_token_id")  # set from the tokenizer


def fresh_model_problem(preset: str, overrides: dict[str, Any]) -> str | None:
    """Why `preset` + `overrides` cannot make a fresh native model, or None."""
    import dataclasses
    import difflib

    from reasonrl.model.config import ModelConfig, get_config

    names = [f.name for f in dataclasses.fields(ModelConfig)]
    for key in overrides:
        if key in TOKENIZER_KEYS:
            return f"'{key}' comes from the tokenizer and cannot be overridden"
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            return f"unknown model field '{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")
    try:
        get_config(preset, **overrides)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


@dataclass
class CheckpointSection:
    every: int = opt(100, "save a checkpoint every N steps (and at the end)", ge=1)
    keep_last: int = opt(2, "number of complete checkpoints kept (0: all)", ge=0)


@dataclass
class StageResult:
    outputs: dict[str, str]
    metrics: dict[str, Any]
    reused: bool = False  # True when the stage was already complete and nothing ran
