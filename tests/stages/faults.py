"""`python -m tests.stages.faults FAULT=N ... -- STAGE ARGS...`: the reasonrl CLI with a fault
injected at an exact point, so the runner tests need no timing luck (a sleep-and-kill test can
miss the moment, or land on another one).

Faults (N counts 1-based: checkpoint steps, logged steps, evaluations or optimizer updates):
  kill-after-save=N    SIGKILL as soon as checkpoint N is complete (nothing after it runs)
  kill-after-log=N     SIGKILL as soon as the metrics row of step N is written
  sigint-in-eval=N     a real SIGINT in the middle of the N-th evaluation (between its prompts)
  sigint-after-update=N  a real SIGINT right after the N-th optimizer update, inside the step
  enospc-at-save=N     writing checkpoint N's trainer state fails half-way with ENOSPC
  full-while-temps     any run-directory write fails with ENOSPC while a stale `.tmp-*`
                       checkpoint dir exists (the restart must clean those before writing)
  nan-loss-from=N      pretrain's loss is NaN from its N-th call on
  kill-rank1-after-update=N  under torchrun, SIGKILL rank 1 alone right after its N-th optimizer
                       update (inside a step; rank 0 is left waiting in the next collective)
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from pathlib import Path


def _die(sig: int) -> None:
    os.kill(os.getpid(), sig)


def kill_after_save(n: int) -> None:
    from reasonrl.train import checkpoint

    original = checkpoint.save_checkpoint_dir

    def save(root, step, fill, **kwargs):
        path = original(root, step, fill, **kwargs)
        if step == n:
            _die(signal.SIGKILL)
        return path
    checkpoint.save_checkpoint_dir = save


def kill_after_log(n: int) -> None:
    from reasonrl.runlog import Run

    original = Run.log_metrics

    def log(self, metrics):
        original(self, metrics)
        if metrics.get("step") == n:
            _die(signal.SIGKILL)
    Run.log_metrics = log


def sigint_in_eval(n: int) -> None:
    from reasonrl.eval import accuracy

    original, calls = accuracy.answer_accuracy, [0]

    def evaluate(policy, tokenizer, examples, *, prompt_fn, **kwargs):
        calls[0] += 1
        if calls[0] != n:
            return original(policy, tokenizer, examples, prompt_fn=prompt_fn, **kwargs)
        rendered = [0]

        def render(example):
            rendered[0] += 1
            if rendered[0] == 2:  # one prompt in: the evaluation is under way
                _die(signal.SIGINT)
            return prompt_fn(example)
        return original(policy, tokenizer, examples, prompt_fn=render, **kwargs)
    accuracy.answer_accuracy = evaluate


def sigint_after_update(n: int) -> None:
    from reasonrl.train.loop import Trainer

    original = Trainer.step

    def step(self, loss_fn, microbatches):
        metrics = original(self, loss_fn, microbatches)
        if self.step_count == n:
            _die(signal.SIGINT)
        return metrics
    Trainer.step = step


def enospc_at_save(n: int) -> None:
    import torch

    original = torch.save

    def save(obj, f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)) and Path(f).parent.name.startswith(f".tmp-step-{n:08d}"):
            Path(f).write_bytes(b"\x80\x02half a pickle")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(f))
        return original(obj, f, *args, **kwargs)
    torch.save = save


def full_while_temps(_: int) -> None:
    from reasonrl.runlog import Run

    def guarded(method):
        def write(self, *args, **kwargs):
            if self.dir is not None and any((self.dir / "checkpoints").glob(".tmp-*")):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.dir))
            return method(self, *args, **kwargs)
        return write
    Run.write_text, Run._append_jsonl = guarded(Run.write_text), guarded(Run._append_jsonl)


def nan_loss_from(n: int) -> None:
    from reasonrl.stages import pretrain

    original, calls = pretrain.lm_loss, [0]

    def loss(model, window):
        calls[0] += 1
        value, metrics, load = original(model, window)
        return (value * float("nan") if calls[0] >= n else value), metrics, load
    pretrain.lm_loss = loss


def kill_rank1_after_update(n: int) -> None:
    from reasonrl.ranks import rank
    from reasonrl.train.loop import Trainer

    original = Trainer.step

    def step(self, loss_fn, microbatches):
        metrics = original(self, loss_fn, microbatches)
        if rank() == 1 and self.step_count == n:
            _die(signal.SIGKILL)
        return metrics
    Trainer.step = step


FAULTS = {name.replace("_", "-"): fn for name, fn in list(globals().items())
          if callable(fn) and name in ("kill_after_save", "kill_after_log", "sigint_in_eval", "sigint_after_update",
                                       "enospc_at_save", "full_while_temps", "nan_loss_from",
                                       "kill_rank1_after_update")}


def main(argv: list[str]) -> int:
    split = argv.index("--")
    for item in argv[:split]:
        name, _, n = item.partition("=")
        FAULTS[name](int(n or 0))
    from reasonrl.cli import main as cli

    return cli(argv[split + 1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
