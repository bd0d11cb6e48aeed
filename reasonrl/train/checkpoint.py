"""Atomic, resumable checkpoints.

Layout of one checkpoint, `<ckpt_root>/step-00000100/`:
  config.json, model.safetensors   the model (`model.save_pretrained`, transformers format)
  tokenizer files                  when a tokenizer is given
  trainer_state.pt                 optimizer + step + RNG states + the stage's `extra`
  dcp/, rng/rank-N.pt              run.strategy=fsdp only: model + optimizer as a distributed
                                   checkpoint (torch.distributed.checkpoint, one shard file per
                                   rank, loadable under any number of ranks) and every rank's RNG;
                                   the model files above are still the whole, consolidated model
  COMPLETE                         written last; a directory without it is not a checkpoint

Everything is written into `<ckpt_root>/.tmp-step-...` first and renamed into place, so a crash
at any moment leaves either the previous set of checkpoints or the new one, never half of one.
`save_checkpoint_dir` is that atomic directory for a stage whose state is not a model.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from reasonrl.errors import StageError
from reasonrl.runlog import Run
from reasonrl.ranks import is_main_process, rank
from reasonrl.train import fsdp

COMPLETE = "COMPLETE"
TRAINER_STATE = "trainer_state.pt"
SHARDED_DIR = "dcp"  # the distributed checkpoint of an FSDP run
RNG_DIR = "rng"
SHARDED_OPTIMIZER = "dcp"  # trainer_state's optimizer entry when the optimizer lives in SHARDED_DIR
_STEP_DIR = re.compile(r"^step-(\d+)$")
_TMP_PREFIX = ".tmp-"


class NonFiniteWeightsError(StageError):
    """Raised instead of saving a model whose weights contain NaN or inf."""


# ---- RNG state ----------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), python and numpy generator states, in types `torch.load` accepts
    with `weights_only=True`."""
    np_state = np.random.get_state(legacy=False)
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"bit_generator": np_state["bit_generator"],
                       "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
                       "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                       "gauss": float(np_state["gauss"])}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore generator states; accepts `load_trainer_state(...)` or its `"rng"` entry."""
    rng = state.get("rng", state)
    torch.set_rng_state(rng["torch"])
    random.setstate(_as_tuple(rng["python"]))
    numpy = rng["numpy"]
    np.random.set_state({"bit_generator": numpy["bit_generator"],
                         "state": {"key": numpy["key"].numpy().astype(np.uint32), "pos": numpy["pos"]},
                         "has_gauss": numpy["has_gauss"], "gauss": numpy["gauss"]})
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def _as_tuple(value: Any) -> Any:
    # random.setstate wants tuples all the way down; serialisers may hand back lists.
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


# ---- saving -------------------------------------------------------------------------------------
def check_finite(model: torch.nn.Module) -> None:
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise NonFiniteWeightsError(f"refusing to save a checkpoint: {name!r} contains NaN or inf "
                                        "(the previous checkpoint is kept)")


def save_checkpoint(ckpt_root: str | os.PathLike, step: int, *, model: torch.nn.Module, tokenizer: Any = None,
                    trainer_state: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                    keep_last: int = 2, run: Run | None = None,
                    annotate: Callable[[Path], None] | None = None) -> Path:
    """Write `ckpt_root/step-{step:08d}` atomically and prune older ones beyond `keep_last`
    (0 keeps all). `annotate(dir)` adds the stage's own files (e.g. the prompt format) before the
    checkpoint is marked complete. Call it on every rank: only rank 0 writes, the others wait
    (with a sharded model every rank also writes its shard of the distributed checkpoint)."""
    if fsdp.is_sharded(model):
        return _save_sharded(ckpt_root, step, model=model, tokenizer=tokenizer, trainer_state=trainer_state or {},
                             extra=extra, keep_last=keep_last, run=run, annotate=annotate)
    check_finite(model)
    fill = _model_files(model, tokenizer, annotate, {"format": 1, "step": step, "trainer": trainer_state,
                                                     "extra": extra or {}})
    return save_checkpoint_dir(ckpt_root, step, fill, keep_last=keep_last, run=run)


def _model_files(model, tokenizer, annotate, state: dict[str, Any], weights: dict | None = None):
    """The `fill` of a model checkpoint: the model (from `weights`, an FSDP run's consolidated
    state dict, when given), tokenizer, the stage's files and trainer_state.pt with the RNG."""

    def fill(directory: Path) -> None:
        model.save_pretrained(str(directory), **({} if weights is None else {"state_dict": weights}))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(directory))
        if annotate is not None:
            annotate(directory)
        torch.save({**state, "rng": rng_state()}, directory / TRAINER_STATE)
    return fill


def save_checkpoint_dir(ckpt_root: str | os.PathLike, step: int, fill: Callable[[Path], None], *,
                        keep_last: int = 2, run: Run | None = None, tmp: Path | None = None) -> Path:
    """The atomic part of `save_checkpoint` for any stage state: `fill(tmp)` writes the files of
    `ckpt_root/step-{step:08d}` into a temp dir, which is flushed, marked COMPLETE and renamed
    into place; older checkpoints beyond `keep_last` are pruned. Stages without a model in
    training (rejection sampling's accepted rows) checkpoint through this directly. `tmp`: the temp
    dir every rank already wrote its shards into (an FSDP checkpoint)."""
    root = Path(ckpt_root)
    final = root / f"step-{step:08d}"
    if is_main_process():
        _write_checkpoint(root, final, step, fill, tmp=tmp)
        removed = prune_checkpoints(root, keep_last)
        (run or Run.null()).print(f"saved checkpoint {final}" + (f" (removed {len(removed)} older)" if removed else ""))
    _barrier()
    return final


def _save_sharded(ckpt_root, step: int, *, model, tokenizer, trainer_state: dict[str, Any], extra, keep_last: int,
                  run: Run | None, annotate) -> Path:
    """save_checkpoint for an FSDP model: every rank writes its shard of model + optimizer (DCP)
    and its RNG into one temp dir that rank 0 named; rank 0 adds the consolidated model files and
    publishes the directory atomically once every rank is done."""
    import torch.distributed.checkpoint as dcp

    if not fsdp.all_finite(model):
        raise NonFiniteWeightsError("refusing to save a checkpoint: the weights contain NaN or inf "
                                    "(the previous checkpoint is kept)")
    root = Path(ckpt_root)
    final = root / f"step-{step:08d}"
    tmp = _agreed_temp(root, final)
    dcp.save({"model": fsdp.sharded_model_state(model), "optimizer": trainer_state["optimizer"]},
             checkpoint_id=str(tmp / SHARDED_DIR))
    (tmp / RNG_DIR).mkdir(exist_ok=True)
    torch.save(rng_state(), tmp / RNG_DIR / f"rank-{rank()}.pt")
    _fsync_path(tmp / RNG_DIR / f"rank-{rank()}.pt")
    state = {**trainer_state, "optimizer": SHARDED_OPTIMIZER}

    whole = fsdp.full_state_dict(model)  # the consolidated weights, on rank 0
    fill = _model_files(model, tokenizer, annotate, {"format": 1, "step": step, "trainer": state,
                                                     "extra": extra or {}}, weights=whole)
    _barrier()  # every rank's shard is on disk
    return save_checkpoint_dir(root, step, fill, keep_last=keep_last, run=run, tmp=tmp)


def _agreed_temp(root: Path, final: Path) -> Path:
    """A fresh temp dir made by rank 0, its name sent to every rank."""
    name = [None]
    if is_main_process():
        tmp = root / f"{_TMP_PREFIX}{final.name}-{os.getpid()}"
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        name = [str(tmp)]
    torch.distributed.broadcast_object_list(name, src=0)
    return Path(name[0])


class CheckpointWriteError(StageError):
    """The file system refused a checkpoint (full disk, quota, permissions): one line, exit 1."""


def _write_checkpoint(root: Path, final: Path, step: int, fill: Callable[[Path], None],
                      tmp: Path | None = None) -> None:
    """Fill a temp dir (a fresh one, or `tmp` that other ranks already wrote into), flush it, mark it
    COMPLETE and rename it into place."""
    try:
        if tmp is None:
            tmp = root / f"{_TMP_PREFIX}{final.name}-{os.getpid()}"
            root.mkdir(parents=True, exist_ok=True)
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
        fill(tmp)
        _fsync_tree(tmp)
        _write_synced(tmp / COMPLETE, json.dumps({"step": step}) + "\n")
        _fsync_path(tmp)
        _replace_dir(tmp, final)
        _fsync_path(root)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)  # give the space back; the previous checkpoints are intact
        reason = exc.strerror or str(exc)
        raise CheckpointWriteError(f"could not write checkpoint {final} ({reason}: {exc.filename or root}); the "
                                   "earlier checkpoints are kept: free space and re-run the same command to resume "
                                   "from them") from exc


def _replace_dir(src: Path, dst: Path) -> None:
    """Rename `src` onto `dst`; an existing `dst` (the same step saved again) is moved aside
    first, because a directory cannot be renamed onto a non-empty one."""
    aside = None
    if dst.exists():
        aside = dst.with_name(f"{_TMP_PREFIX}old-{dst.name}-{os.getpid()}")
        os.replace(dst, aside)
    os.replace(src, dst)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def prune_checkpoints(root: Path, keep_last: int) -> list[Path]:
    """Delete complete checkpoints beyond the newest `keep_last`; each is renamed to a temp name
    first so a crash mid-delete never leaves a half-deleted directory that looks complete."""
    if keep_last <= 0:
        return []
    doomed = complete_checkpoints(root)[:-keep_last]
    for path in doomed:
        trash = path.with_name(f"{_TMP_PREFIX}del-{path.name}-{os.getpid()}")
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
    return doomed


# ---- finding and loading ------------------------------------------------------------------------
def complete_checkpoints(ckpt_root: str | os.PathLike) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and path.is_dir() and (path / COMPLETE).is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(ckpt_root: str | os.PathLike, *, clean_stale: bool = True) -> Path | None:
    """The newest complete checkpoint, or None. With `clean_stale` (the default, meant for the
    process that owns the run at start-up) rank 0 also deletes temp dirs left by a crash;
    an observer reading while training runs passes `clean_stale=False`."""
    root = Path(ckpt_root)
    if clean_stale:
        remove_stale_temps(root)
    found = complete_checkpoints(root)
    return found[-1] if found else None


def remove_stale_temps(ckpt_root: str | os.PathLike) -> None:
    """Delete the temp dirs a crash left (half-written or half-deleted checkpoints); rank 0 only."""
    root = Path(ckpt_root)
    if is_main_process() and root.is_dir():
        for path in root.iterdir():
            if path.name.startswith(_TMP_PREFIX) and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)


def load_trainer_state(path: str | os.PathLike) -> dict[str, Any]:
    """`trainer_state.pt` of a checkpoint directory (or the file itself): keys `step`, `trainer`
    (for `Trainer.load_state_dict`), `rng` (for `restore_rng`) and `extra`."""
    path = Path(path)
    file = path / TRAINER_STATE if path.is_dir() else path
    return torch.load(file, map_location="cpu", weights_only=True)


# ---- file-system helpers ------------------------------------------------------------------------
def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file and directory below `root`, so the rename never publishes data that
    is still only in the page cache."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            _fsync_path(Path(dirpath) / name)
        _fsync_path(Path(dirpath))


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


# ---- what every training stage does with them -------------------------------------------------
def restore_trainer(ckpt: str | os.PathLike, trainer) -> dict[str, Any]:
    """Load `ckpt`'s optimizer/schedule state into `trainer` and restore the RNG; returns the
    whole trainer state (its `step` and the stage's `extra`)."""
    state = load_trainer_state(ckpt)
    trainer.load_state_dict(state["trainer"], sharded_dir=Path(ckpt) / SHARDED_DIR)
    own = Path(ckpt) / RNG_DIR / f"rank-{rank()}.pt"  # an FSDP run kept every rank's; others rank 0's
    restore_rng(torch.load(own, map_location="cpu", weights_only=True) if own.is_file() else state["rng"])
    return state


def export_model(directory: str | os.PathLike, model: torch.nn.Module, tokenizer: Any,
                 annotate: Callable[[Path], None] | None = None) -> None:
    """The final model directory: weights (refused when non-finite), tokenizer, the stage's files.
    Call it on every rank: the weights are identical, so rank 0 writes and the others wait."""
    if fsdp.is_sharded(model):  # consolidated to the HF format (rank 0 writes)
        if not fsdp.all_finite(model):
            raise NonFiniteWeightsError("refusing to export the model: its weights contain NaN or inf")
        whole = fsdp.full_state_dict(model)
        if is_main_process():
            model.save_pretrained(directory, state_dict=whole)
    else:
        check_finite(model)
        if is_main_process():
            model.save_pretrained(directory)
    if is_main_process():
        tokenizer.save_pretrained(directory)
        if annotate is not None:
            annotate(Path(directory))
    _barrier()

