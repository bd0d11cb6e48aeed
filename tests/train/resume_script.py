"""Train the toy model for --steps steps, checkpointing every --every; resume if a checkpoint exists.

Run by test_resume.py as a subprocess. `--hang-at-save S` makes the save of step S stop after the
weights are written into the temp dir (before COMPLETE): it touches `<out>/hung` and sleeps, so
the test can SIGKILL it at a known point in the middle of a checkpoint write.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from reasonrl.runlog import Run
from reasonrl.train.checkpoint import latest_checkpoint, load_trainer_state, restore_rng, save_checkpoint
from reasonrl.seeding import step_generator
from reasonrl.train.loop import OptimConfig, Trainer
from tests.train.toy import ToyModel


def noisy_loss(model, batch):
    x, y = batch
    # Global-RNG noise on purpose: only a restored RNG state reproduces it after a resume.
    logits = model(x + 0.01 * torch.randn_like(x))
    return (logits - y).pow(2).mean(), {}, model.load(logits)


def resume(model: ToyModel, trainer: Trainer, ckpt_root: Path, run: Run) -> int:
    latest = latest_checkpoint(ckpt_root)
    if latest is None:
        return 0
    model.load_weights(latest)
    state = load_trainer_state(latest)
    trainer.load_state_dict(state["trainer"])
    restore_rng(state)
    run.truncate_logs_after(state["extra"]["step"])
    return state["extra"]["step"]


def hang_in_save(model: ToyModel, out: Path) -> None:
    write = model.save_pretrained

    def save_then_hang(directory: str) -> None:
        write(directory)
        (out / "hung").touch()
        time.sleep(600)
    model.save_pretrained = save_then_hang


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hang-at-save", type=int, default=-1)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    run = Run(args.out, quiet=True, stage="toy")
    model = ToyModel(seed=args.seed)
    trainer = Trainer(model, OptimConfig(lr=0.05, warmup_steps=2, total_steps=args.steps, moe_bias_gamma=0.01), run)
    start = resume(model, trainer, args.out / "checkpoints", run)
    for step in range(start + 1, args.steps + 1):
        gen = step_generator(args.seed, step, "data")
        x, y = torch.randn(4, 4, generator=gen), torch.randn(4, 3, generator=gen)
        metrics = trainer.step(noisy_loss, [(x[:2], y[:2]), (x[2:], y[2:])])
        run.log_metrics({"step": step, **metrics})
        if step % args.every == 0 or step == args.steps:
            if step == args.hang_at_save:
                hang_in_save(model, args.out)
            save_checkpoint(args.out / "checkpoints", step, model=model, trainer_state=trainer.state_dict(),
                            extra={"step": step}, keep_last=2, run=run)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out / "final.safetensors"))


if __name__ == "__main__":
    main()
