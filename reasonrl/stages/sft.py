"""`reasonrl sft`: supervised fine-tuning on conversations or prompt/response pairs.

The loss is on assistant tokens only; examples are packed into windows of `data.seq_len`
tokens. Used for R1's cold start (correct, readable R1-Zero samples), for SFT on rejection-sampled
data, and for distillation into a student. Runs on the stage runner: checkpointed, resumable,
Ctrl-C safe; the model card (prompt format) is written with every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonrl.config import opt, section
from reasonrl.stages.common import CheckpointSection, ModelSpec, RunSection, StageResult
from reasonrl.tasks.prompts import PromptFormatChoice
from reasonrl.train.loop import OptimConfig


@dataclass
class SFTData:
    path: str | None = opt(None, "JSONL of {messages: [...]} or {prompt, response} rows (required)")
    prompt_format: PromptFormatChoice = opt("auto", "how a pair's prompt is rendered (auto: the model's card)")
    system: str | None = opt(None, "system message (null: the model's card, else the format's default)")
    prefill: str = opt("", "text that starts the assistant's turn (empty: the model's card)")
    seq_len: int = opt(256, "tokens per packed training window", ge=2)
    batch_size: int = opt(16, "windows per optimizer step", ge=1)
    packing: bool = opt(True, "pack several examples into each window (off: one example per row, truncated)")


@dataclass
class SFTBudget:
    epochs: float = opt(2.0, "passes over the data (ignored when steps > 0)", gt=0)
    steps: int = opt(0, "optimizer steps instead of epochs (0: use epochs)", ge=0)


@dataclass
class SFTEval:
    task: str = opt("", "task for held-out accuracy on its dev split ('' : none)")
    options: dict[str, Any] = opt(factory=dict, help="task options")
    every: int = opt(0, "evaluate every N steps (0: only at the end, when a task is set)", ge=0)
    n_examples: int = opt(200, "held-out examples per evaluation", ge=1)
    max_new_tokens: int = opt(64, "generation budget per answer", ge=1)


@dataclass
class SFTConfig:
    run: RunSection = section(RunSection, "run directory, seed, threads")
    model: ModelSpec = section(ModelSpec, "the model to fine-tune (model.path)")
    data: SFTData = section(SFTData, "training data")
    optim: OptimConfig = section(OptimConfig, "optimizer and schedule")
    budget: SFTBudget = section(SFTBudget, "how long to train")
    eval: SFTEval = section(SFTEval, "held-out evaluation")
    checkpoint: CheckpointSection = section(CheckpointSection, "checkpoints")


def main(cfg: SFTConfig) -> StageResult:
    from reasonrl.stages.runner import Schedule, run_stage

    if cfg.model.path is None:
        raise ValueError("sft needs model.path: a reasonrl checkpoint or a local transformers model directory")
    if cfg.data.path is None:
        raise ValueError("sft needs data.path: a JSONL file of {messages} or {prompt, response} rows")
    from reasonrl.train.distributed import check_divisible

    check_divisible("sft", data__batch_size=cfg.data.batch_size)
    schedule = Schedule(eval_every=cfg.eval.every if cfg.eval.task else 0, eval_at_end=bool(cfg.eval.task),
                        checkpoint_every=cfg.checkpoint.every)
    return run_stage("sft", cfg, SFTProgram, schedule)


class SFTProgram:
    """The sft stage as the runner drives it (see stages/runner.py's StageProgram)."""

    def __init__(self, cfg: SFTConfig, run, ckpt: Path | None):
        import dataclasses

        import torch

        from reasonrl.model import load_policy_bundle
        from reasonrl.train.loop import Trainer
        from reasonrl.train.sft_data import load_rows

        torch.set_num_threads(cfg.run.threads)
        rows = load_rows(cfg.data.path)  # bad data fails before any model loads
        bundle = load_policy_bundle(str(ckpt)) if ckpt is not None else \
            load_policy_bundle(cfg.model.path, gguf_file=cfg.model.gguf_file)
        self.cfg, self.run = cfg, run
        self.model, self.tokenizer = bundle.policy.train(), bundle.tokenizer
        self.prompt = _prompt_spec(cfg, bundle)
        self.windows = _windows(cfg, self.tokenizer, rows, self.prompt)
        self.total_steps = cfg.budget.steps or max(1, round(cfg.budget.epochs * len(self.windows[0]) / cfg.data.batch_size))
        optim = cfg.optim if cfg.optim.total_steps else dataclasses.replace(cfg.optim, total_steps=self.total_steps)
        self.trainer = Trainer(self.model, optim, run, strategy=cfg.run.strategy)
        self.task = None
        if cfg.eval.task:
            from reasonrl.tasks import get_task

            self.task = get_task(cfg.eval.task, **cfg.eval.options)
        if ckpt is None:
            run.print(f"sft: {len(rows)} rows -> {len(self.windows[0])} windows of {cfg.data.seq_len} tokens, "
                      f"{self.total_steps} steps")

    def train_step(self, step: int) -> dict[str, Any]:
        from reasonrl.data_utils import batch_indices
        from reasonrl.ranks import world_size

        ids, labels = self.windows
        rows = batch_indices(len(ids), self.cfg.data.batch_size, step, self.cfg.run.seed)
        n = max(self.cfg.optim.grad_accum, 1)
        if world_size() > 1:
            return self.trainer.step(sft_loss, sharded_microbatches(ids[rows], labels[rows], n, self.model))
        micro = list(zip(ids[rows].chunk(n), labels[rows].chunk(n)))
        return self.trainer.step(sft_loss, micro)

    def evaluate(self) -> dict[str, float]:
        from reasonrl.eval.accuracy import answer_accuracy

        examples = self.task.examples(_eval_split(self.task), self.cfg.eval.n_examples, seed=0)
        result = answer_accuracy(self.model, self.tokenizer, examples, verifier=self.task.verifier,
                                 prompt_fn=lambda ex: self.prompt.render(ex, self.tokenizer),
                                 max_new_tokens=self.cfg.eval.max_new_tokens, seed=self.cfg.run.seed,
                                 stop_strings=self.prompt.stop_strings)
        return {"eval/accuracy": result.accuracy, f"eval/{self.task.name}/pass@1": result.accuracy}

    def save_checkpoint(self, step: int) -> None:
        from reasonrl.train.checkpoint import save_checkpoint

        save_checkpoint(self.run.path("checkpoints"), step, model=self.model, tokenizer=self.tokenizer,
                        trainer_state=self.trainer.state_dict(), extra={"data_cursor": step},
                        keep_last=self.cfg.checkpoint.keep_last, run=self.run, annotate=self._annotate)

    def restore(self, ckpt: Path) -> int:
        from reasonrl.train.checkpoint import restore_trainer

        return int(restore_trainer(ckpt, self.trainer)["step"])

    def export(self, directory: Path) -> None:
        from reasonrl.train.checkpoint import export_model

        export_model(directory, self.model, self.tokenizer, self._annotate)

    def _annotate(self, directory: Path) -> None:
        from reasonrl.tasks.prompts import write_model_card

        p = self.prompt
        write_model_card(directory, p.prompt_format, self.tokenizer, p.system, p.prefill, p.stop_strings)

    def stop_early(self, metrics: dict[str, Any]) -> bool:
        return False

    def resources(self):
        import contextlib

        return contextlib.nullcontext()


def _prompt_spec(cfg: SFTConfig, bundle):
    import dataclasses

    spec = bundle.prompt_spec(cfg.data.prompt_format)
    return dataclasses.replace(spec, system=spec.system if cfg.data.system is None else cfg.data.system,
                               prefill=cfg.data.prefill or spec.prefill)


def _eval_split(task) -> str:
    return "dev" if "dev" in task.splits else "test"


def _windows(cfg: SFTConfig, tokenizer, rows: list[dict], prompt):
    from reasonrl.train.sft_data import encode_row, pack, pad_each

    documents = [encode_row(tokenizer, row, prompt) for row in rows]
    build = pack if cfg.data.packing else pad_each
    return build(documents, cfg.data.seq_len, tokenizer.pad_token_id)


def sharded_microbatches(ids, labels, n: int, model) -> list[tuple]:
    """This rank's `n` microbatches of the global batch (B, T + 1), each carrying the global token
    counts over n * WORLD_SIZE: a loss summed over a microbatch's tokens and divided by them is,
    after the trainer's mean over microbatches and ranks, the token mean of the whole global batch
    (a per-rank token mean would weigh a rank's tokens by its own count)."""
    from reasonrl.ranks import world_size
    from reasonrl.train.distributed import rank_slice

    depth = int(getattr(model.config, "num_nextn_predict_layers", 0) or 0)  # HF policies: none used
    norms = token_counts(labels, depth) / (n * world_size())  # (1 + D,)
    mine = rank_slice(len(ids))
    return [(i, l, norms) for i, l in zip(ids[mine].chunk(n), labels[mine].chunk(n))]


def token_counts(labels, depth: int):
    """Scored targets of labels (B, T + 1): the next-token loss's, then each MTP depth k's. (1 + D,)"""
    from reasonrl.train.sft_data import IGNORE

    import torch

    counts = [(labels[:, 1:] != IGNORE).sum()] + [(labels[:, k + 1:] != IGNORE).sum() for k in range(1, depth + 1)]
    return torch.stack(counts).float()


def sft_loss(model, batch):
    """Token-mean CE over assistant tokens (+ MTP on the same labels for native models). A batch
    with a third element (global token counts, see `sharded_microbatches`) is normalised by them."""
    from reasonrl.model.mtp import mtp_loss
    from reasonrl.train.sft_data import IGNORE

    ids, labels, *norms = batch  # (B, T + 1) each
    out = model.forward_train(ids[:, :-1])
    target = labels[:, 1:]  # (B, T)
    logp = out.logits.float().log_softmax(-1)
    valid = target != IGNORE
    picked = logp.gather(-1, target.clamp(min=0)[..., None])[..., 0]  # (B, T)
    if norms:
        return _globally_normalised(model, out, picked, valid, ids, labels, norms[0])
    ce = -(picked * valid).sum() / valid.sum().clamp(min=1)  # a window with no labels adds nothing
    loss, metrics = ce, {"ce_loss": ce.detach(), "tokens": valid.sum().float()}
    if out.mtp_logits and valid.any():
        mtp = mtp_loss(out.mtp_logits, ids, 1.0, ignore_index=IGNORE, labels=labels)
        if mtp.isfinite():
            loss = loss + model.config.mtp_loss_weight * mtp
            metrics["mtp_loss"] = mtp.detach()
    if out.aux_loss is not None:
        loss = loss + out.aux_loss
    return loss, metrics, out.moe_load


def _globally_normalised(model, out, picked, valid, ids, labels, norms):
    """sft_loss with sums over this microbatch's tokens divided by the global counts `norms` (1 + D,)."""
    import torch.nn.functional as F

    from reasonrl.train.sft_data import IGNORE

    ce = -(picked * valid).sum() / norms[0].clamp(min=1e-9)
    loss, metrics = ce, {"ce_loss": ce.detach(), "tokens": valid.sum().float()}
    if out.mtp_logits:
        mtp = 0.0
        for k, lg in enumerate(out.mtp_logits, start=1):  # lg (B, T - k): row t predicts labels[t + k + 1]
            y = labels[:, k + 1:k + 1 + lg.shape[1]]
            total = F.cross_entropy(lg[:, :y.shape[1]].reshape(-1, lg.shape[-1]).float(), y.reshape(-1),
                                    ignore_index=IGNORE, reduction="sum")
            mtp = mtp + total / norms[k].clamp(min=1e-9)
        mtp = mtp / len(out.mtp_logits)
        loss = loss + model.config.mtp_loss_weight * mtp
        metrics["mtp_loss"] = mtp.detach()
    if out.aux_loss is not None:
        loss = loss + out.aux_loss
    return loss, metrics, out.moe_load
