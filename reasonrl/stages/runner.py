"""The one stage runner: every training stage (pretrain, rl, and the ones built on them) is a
`StageProgram` that this module drives through the same life cycle:

    refuse what cannot work (a changed config); under torchrun, join the process group
    -> open the latest readable checkpoint (falling back past a corrupt one) or build fresh
    -> write config.yaml / environment.json, drop log rows of steps not in the checkpoint
    -> step loop: progress bar, periodic evaluation, checkpoints, Ctrl-C checkpoint (a Ctrl-C inside
       a step is held until the step is done, so a checkpoint never holds part of one)
    -> final evaluation (once), the final `model/` (or the program's own outputs), the stage marked
       complete -> StageResult

Nothing is written before the config is validated and the program is built, so bad input
leaves an existing run directory as it was.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Protocol

from reasonrl.errors import StageError
from reasonrl.stages.common import StageResult

STAGE_FILE = "stage.json"  # written last: the stage is complete, with its outputs and metrics
# how a run is shown, where it lives and how ranks split the work: none changes what it computes
IGNORED_CHANGES = ("run.quiet", "run.allow_config_change", "run.dir", "run.name", "run.log_to", "run.strategy")
# keys added after runs were recorded, with the value that computes what those runs did: a run whose
# config.yaml lacks one is the same run while the key holds that value (resume, pipeline fingerprints)
LATER_KEYS = {"rl.sampling_seeds": "batch", "rl.share_prompt": False, "optim.activation_checkpointing": False}


class StageProgram(Protocol):
    """What a stage hands the runner: a model in training plus how to step, evaluate and save it."""

    total_steps: int

    def train_step(self, step: int) -> dict[str, Any]:
        """One optimizer step (or one RL step) with 0-based index `step`; returns its metrics."""

    def evaluate(self) -> dict[str, float]:
        """Held-out metrics (`eval/...` keys); must not draw from the global RNG streams."""

    def save_checkpoint(self, step: int) -> None:
        """Write a complete checkpoint for `step` finished steps."""

    def restore(self, ckpt: Path) -> int:
        """Load trainer state, RNG and the stage's extras from `ckpt`; return its step."""

    def export(self, directory: Path) -> dict[str, str] | None:
        """Write the final model directory (weights, tokenizer, prompt format). A stage whose
        product is not a model (rejection sampling: a dataset) writes its files instead and
        returns its outputs; None means `{"model": directory}`."""

    def stop_early(self, metrics: dict[str, Any]) -> bool:
        """True when the stage's own budget rule ends it before total_steps."""

    def resources(self) -> ContextManager[Any]:
        """Worker pools and the like, held for the loop and the final evaluation."""


Build = Callable[[Any, Any, "Path | None"], StageProgram]  # (cfg, run, checkpoint or None) -> program


@dataclass
class Schedule:
    eval_every: int  # 0: no periodic evaluation
    eval_at_end: bool
    checkpoint_every: int


def run_stage(name: str, cfg: Any, build: Build, schedule: Schedule) -> StageResult:
    """Drive `build`'s program through the life cycle; under torchrun every rank runs this, inside
    one process group (rank 0 writes, see runlog.Run)."""
    from reasonrl.train.distributed import process_group

    with process_group():
        return _run_stage(name, cfg, build, schedule)


def _run_stage(name: str, cfg: Any, build: Build, schedule: Schedule) -> StageResult:
    from reasonrl.runlog import Run
    from reasonrl.runlog_sinks import open_sinks
    from reasonrl.train.distributed import barrier

    sinks = open_sinks(cfg.run.log_to, cfg.run.path, cfg.run.name)  # a missing extra fails before any write
    run = Run(cfg.run.path, quiet=cfg.run.quiet, stage=name, sinks=sinks)
    done = already_complete(name, cfg, run)
    if done is not None:
        return done
    program, start = open_program(cfg, run, build, name)
    if start > program.total_steps:
        raise StageError(f"{name}: the latest checkpoint is at step {start}, beyond the {program.total_steps} steps "
                         "configured: nothing to train (raise the step budget or use a new run.name)")
    record_run(run, cfg, name)
    run.truncate_logs_after(start)
    with program.resources(), contextlib.closing(run):
        metrics = step_loop(program, run, name, start, schedule)
        final = run.path("model")
        outputs = program.export(final) or {"model": str(final)}
    result = StageResult(dict(outputs), metrics)
    mark_complete(run, name, result, steps=program.total_steps)
    barrier()  # rank 0's last writes are on disk before any rank reads them (distill's next part)
    run.print(f"{name}: model written to {final}" if result.outputs == {"model": str(final)} else
              f"{name}: outputs: {result.outputs}")
    return result


def already_complete(name: str, cfg: Any, run) -> StageResult | None:
    """The recorded result when `run.dir` holds this stage complete with this very config (a
    re-run then does nothing); a changed config is refused or, when allowed, re-done."""
    changed = check_config_change(run.dir, cfg, name)
    done = None if changed else completed_result(run.dir)
    if done is not None:
        run.print(f"{name}: already complete in {run.dir} (nothing to do); outputs: {done.outputs}")
    return done


def mark_complete(run, name: str, result: StageResult, **info: Any) -> None:
    """Written last: `stage.json` with the outputs and final metrics marks the stage complete."""
    run.write_json(STAGE_FILE, {"stage": name, **info, "outputs": result.outputs, "metrics": _plain(result.metrics)})


def check_config_change(run_dir: Path, cfg: Any, name: str) -> list[str]:
    """A resumed run must train what it started with: list the keys that differ from the run's
    config.yaml and refuse, unless run.allow_config_change is set."""
    import yaml

    from reasonrl.config import to_dict

    recorded = run_dir / "config.yaml"
    if not recorded.is_file():
        return []
    old = _flatten(yaml.safe_load(recorded.read_text(encoding="utf-8")) or {})
    new = _flatten(to_dict(cfg))
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k) and k not in IGNORED_CHANGES
                     and not (k not in old and k in LATER_KEYS and new.get(k) == LATER_KEYS[k]))
    if not changed:
        return []
    shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:4])
    more = f" (+{len(changed) - 4} more)" if len(changed) > 4 else ""
    if not cfg.run.allow_config_change:
        raise StageError(f"{name}: {run_dir} was started with another config ({shown}{more}); re-run with the same "
                         "config, pick a new run.name, or pass --allow-config-change")
    from reasonrl.runlog import Run

    Run(None).warn(f"{name}: resuming {run_dir} with a changed config: {shown}{more}")
    return changed


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value) and _is_section(prefix + key):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _is_section(key: str) -> bool:
    # sections nest; free-form dict values (task options, rewards, overrides) compare whole
    return key.count(".") == 0 and key not in ("rewards",)


def completed_result(run_dir: Path) -> StageResult | None:
    import json

    marker = run_dir / STAGE_FILE
    if not marker.is_file():
        return None
    info = json.loads(marker.read_text(encoding="utf-8"))
    if not all(Path(p).exists() for p in info["outputs"].values()):
        return None
    return StageResult(info["outputs"], info["metrics"], reused=True)


def open_program(cfg: Any, run, build: Build, name: str) -> tuple[StageProgram, int]:
    """Build from the newest readable checkpoint; an unreadable one (torn, empty, truncated) is
    renamed `corrupt-step-N` with a warning and the previous one is tried, down to a fresh start."""
    from reasonrl.train.checkpoint import complete_checkpoints, remove_stale_temps

    root = run.path("checkpoints")
    remove_stale_temps(root)  # before anything is written: a full disk must not block the restart
    for ckpt in reversed(complete_checkpoints(root)):
        try:
            program = build(cfg, run, ckpt)
            start = program.restore(ckpt)
        except CHECKPOINT_ERRORS as exc:
            aside = ckpt.with_name("corrupt-" + ckpt.name)
            reason = (str(exc).strip().splitlines() or [""])[0][:120]
            run.warn(f"{name}: checkpoint {ckpt} is unreadable ({type(exc).__name__}: {reason}); "
                     f"moved to {aside.name}, trying the previous one")
            if run.is_main:  # every rank finds the same checkpoint unreadable; one moves it
                ckpt.rename(aside)
            continue
        run.print(f"{name}: resuming from {ckpt} (step {start})")
        return program, start
    return build(cfg, run, None), 0


def _checkpoint_errors() -> tuple[type[BaseException], ...]:
    import pickle

    errors: list[type[BaseException]] = [OSError, EOFError, RuntimeError, ValueError, KeyError, pickle.UnpicklingError]
    with contextlib.suppress(ImportError):
        from safetensors import SafetensorError

        errors.append(SafetensorError)
    with contextlib.suppress(ImportError):  # a damaged distributed checkpoint (an FSDP run's dcp/)
        from torch.distributed.checkpoint.api import CheckpointException

        errors.append(CheckpointException)
    return tuple(errors)


CHECKPOINT_ERRORS = _checkpoint_errors()


def record_run(run, cfg: Any, name: str) -> None:
    from reasonrl.config import dump_yaml

    run.write_text("config.yaml", f"# resolved config of `reasonrl {name}`; re-run with: reasonrl {name} <this file>\n"
                   + dump_yaml(cfg))
    run.write_environment()


def step_loop(program: StageProgram, run, name: str, start: int, schedule: Schedule) -> dict[str, Any]:
    """Steps start..total with evaluation and checkpoints. Ctrl-C (held until the step in progress
    is done, see `whole_step`; at once during an evaluation, which changes no state) writes a
    checkpoint holding exactly the steps that finished (their metrics logged) and re-raises."""
    total = program.total_steps
    metrics: dict[str, Any] = {}
    finished = logged = start
    with run.progress(total, name) as bar:
        bar.advance(start)
        try:
            for step in range(start, total):
                with whole_step(run, name, step):
                    metrics = program.train_step(step)
                    finished = step + 1
                last = finished == total
                if _eval_due(schedule, finished, last):
                    metrics.update(_evaluate(program))
                stop = program.stop_early(metrics)
                run.log_metrics({"step": finished, **metrics})
                logged = finished
                bar.advance(1, **_progress_fields(metrics))
                if last or stop or finished % schedule.checkpoint_every == 0:
                    program.save_checkpoint(finished)
                if stop:
                    program.total_steps = finished
                    break
            if start == total:  # killed after the last checkpoint: its row (evaluation included) is logged
                metrics = run.last_metrics()
        except MidStepAbort:
            run.print(f"{name}: stopped inside step {finished + 1}; no checkpoint written (a re-run resumes from "
                      "the last one)")
            raise
        except KeyboardInterrupt:
            if finished > logged:
                run.log_metrics({"step": finished, **{k: v for k, v in metrics.items() if not k.startswith("eval/")}})
            run.print(f"{name}: interrupted; writing a checkpoint at step {finished}")
            program.save_checkpoint(finished)
            raise
    return metrics


class MidStepAbort(KeyboardInterrupt):
    """A second Ctrl-C inside a step: the state is half-updated, so no checkpoint may be written."""


@contextlib.contextmanager
def whole_step(run, name: str, step: int):
    """Hold a Ctrl-C that arrives inside a step until the step is done: a step may apply several
    optimizer updates (rl.mu, minibatches), and a checkpoint of half of them, named for the steps
    before, would make the resumed run apply them again. A second Ctrl-C stops at once."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum, frame):
        if pending:
            raise MidStepAbort()
        pending.append(signum)
        run.print(f"{name}: interrupt: finishing step {step + 1} first (Ctrl-C again to stop without a checkpoint)")

    previous = signal.signal(signal.SIGINT, hold) or signal.default_int_handler  # None: not set from Python
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt()


def _eval_due(schedule: Schedule, finished: int, last: bool) -> bool:
    if last:
        return schedule.eval_at_end or bool(schedule.eval_every and finished % schedule.eval_every == 0)
    return bool(schedule.eval_every) and finished % schedule.eval_every == 0


def _evaluate(program: StageProgram) -> dict[str, float]:
    import torch

    # Evaluation draws its own seeded randomness; fork_rng keeps the training streams exactly where
    # an uninterrupted run has them, whether or not this evaluation runs (resume, Ctrl-C).
    with torch.random.fork_rng(devices=[]):
        return program.evaluate()


def _progress_fields(metrics: dict[str, Any]) -> dict[str, float]:
    keys = {"loss": "loss", "reward/mean": "reward", "accuracy": "acc", "eval/accuracy": "eval",
            "accept_rate": "accept"}
    return {short: float(metrics[k]) for k, short in keys.items() if k in metrics}


def _plain(metrics: dict[str, Any]) -> dict[str, Any]:
    from reasonrl.runlog import _jsonable

    return {k: _jsonable(v) for k, v in metrics.items()}
