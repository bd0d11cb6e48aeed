"""`reasonrl pretrain`: a native DeepSeek-V3-style base model from scratch on a generated corpus.

Next-token loss + MTP loss on packed sequences, with in-loop held-out answer accuracy. Budgets
are in steps or tokens (optionally "until held-out accuracy >= X"), never wall time, so a run is
reproducible; re-running the same command resumes from the latest complete checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reasonrl.config import opt, section
from reasonrl.stages.common import CheckpointSection, ModelSpec, RunSection, StageResult
from reasonrl.train.loop import OptimConfig


@dataclass
class TokenizerSection:
    path: str | None = opt(None, "use this tokenizer directory instead of training one")
    vocab_size: int = opt(512, "vocabulary size of the byte-level BPE trained on the corpus", ge=263)


@dataclass
class CorpusSection:
    task: str = opt("arithmetic", "task generating the corpus (see docs/tasks.md)")
    options: dict[str, Any] = opt(factory=lambda: {"digits": 2, "corpus_error_rate": 0.5},
                                  help="task options, e.g. {digits: 2, corpus_error_rate: 0.5}")
    n_examples: int = opt(7000, "training documents generated from the task's train split", ge=1)
    template: Literal["r1", "r1_short", "plain"] = opt("r1", "document format: r1 (R1-Zero prompt + <think>/<answer> "
                                                     "completion), r1_short (the conversation without the "
                                                     "instruction) or plain (question, solution, answer)")
    tag_fraction: float = opt(1.0, "fraction of r1/r1_short documents whose completion is in the "
                                   "<think>/<answer> format; the rest end in a plain 'Answer: N' or "
                                   "'The answer is N.' line, so that R1-Zero has a format to learn "
                                   "(template plain: must stay 1)", ge=0, le=1)
    seq_len: int = opt(128, "tokens per packed training sequence", ge=2)
    batch_size: int = opt(16, "sequences per optimizer step", ge=1)


@dataclass
class BudgetSection:
    steps: int = opt(600, "optimizer steps (ignored when `tokens` > 0)", ge=1)
    tokens: int = opt(0, "train for this many tokens instead of `steps` (0: use steps)", ge=0)
    until_accuracy: float | None = opt(None, "stop early once held-out greedy accuracy reaches this value", ge=0, le=1)


@dataclass
class EvalSection:
    every: int = opt(200, "evaluate held-out answer accuracy every N steps (and at the end); 0 disables", ge=0)
    n_examples: int = opt(200, "held-out dev examples per evaluation (a fixed set, the same for every run seed)", ge=1)
    max_new_tokens: int = opt(64, "generation budget per answer", ge=1)


@dataclass
class PretrainConfig:
    run: RunSection = section(RunSection, "run directory, seed, threads")
    model: ModelSpec = section(ModelSpec, "native model preset and overrides")
    tokenizer: TokenizerSection = section(TokenizerSection, "tokenizer")
    data: CorpusSection = section(CorpusSection, "corpus")
    optim: OptimConfig = section(OptimConfig, "optimizer and schedule")
    budget: BudgetSection = section(BudgetSection, "how long to train")
    eval: EvalSection = section(EvalSection, "held-out evaluation")
    checkpoint: CheckpointSection = section(CheckpointSection, "checkpoints")


PROMPT_FORMAT = {"r1": "r1_zero", "r1_short": "r1_short", "plain": "plain"}  # corpus template -> prompt format


def main(cfg: PretrainConfig) -> StageResult:
    from reasonrl.stages.runner import Schedule, run_stage

    from reasonrl.train.distributed import check_divisible

    check_divisible("pretrain", data__batch_size=cfg.data.batch_size)
    schedule = Schedule(eval_every=cfg.eval.every, eval_at_end=cfg.eval.every > 0, checkpoint_every=cfg.checkpoint.every)
    return run_stage("pretrain", cfg, PretrainProgram, schedule)


class PretrainProgram:
    """The pretrain stage as the runner drives it (see stages/runner.py's StageProgram)."""

    def __init__(self, cfg: PretrainConfig, run, ckpt: Path | None):
        import dataclasses

        import torch

        from reasonrl.train.loop import Trainer

        torch.set_num_threads(cfg.run.threads)
        self.cfg, self.run, self.total_steps = cfg, run, _total_steps(cfg)
        self.task, docs, self.eval_examples, self.tokenizer = _prepare_data(cfg, run)
        self.windows = _windows(cfg, self.tokenizer, docs)
        self.model = _init_model(cfg, self.tokenizer, ckpt)
        optim = cfg.optim if cfg.optim.total_steps else dataclasses.replace(cfg.optim, total_steps=self.total_steps)
        self.trainer = Trainer(self.model, optim, run, strategy=cfg.run.strategy)
        if ckpt is None:
            run.print(f"pretrain: {sum(p.numel() for p in self.model.parameters()) / 1e6:.2f}M params, "
                      f"{len(self.windows)} windows of {cfg.data.seq_len} tokens, {self.total_steps} steps")

    def train_step(self, step: int) -> dict[str, Any]:
        from reasonrl.data_utils import batch_indices
        from reasonrl.ranks import world_size
        from reasonrl.train.distributed import rank_slice

        rows = self.windows[batch_indices(len(self.windows), self.cfg.data.batch_size, step, self.cfg.run.seed)]
        if world_size() > 1:  # full windows: the mean of equal-sized slices' token means is the global one
            rows = rows[rank_slice(len(rows))]
        return self.trainer.step(lm_loss, rows.chunk(max(self.cfg.optim.grad_accum, 1)))

    def evaluate(self) -> dict[str, float]:
        from reasonrl.eval.accuracy import answer_accuracy
        from reasonrl.stages.rl import in_loop_eval_metrics
        from reasonrl.tasks.base import IN_LOOP_EVAL_SEED
        from reasonrl.tasks.prompts import build_prompt

        fmt = PROMPT_FORMAT[self.cfg.data.template]
        result = answer_accuracy(self.model, self.tokenizer, self.eval_examples, verifier=self.task.verifier,
                                 prompt_fn=lambda ex: build_prompt(ex, self.tokenizer, fmt),
                                 max_new_tokens=self.cfg.eval.max_new_tokens, seed=IN_LOOP_EVAL_SEED)
        return in_loop_eval_metrics(self.task, self.eval_examples, result)

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

        write_model_card(directory, PROMPT_FORMAT[self.cfg.data.template], self.tokenizer)

    def stop_early(self, metrics: dict[str, Any]) -> bool:
        target = self.cfg.budget.until_accuracy
        return target is not None and metrics.get("eval/accuracy", -1.0) >= target

    def resources(self):
        import contextlib

        return contextlib.nullcontext()


def _prepare_data(cfg: PretrainConfig, run):
    from reasonrl.data_utils import ensure_tokenizer
    from reasonrl.stages.rl import in_loop_eval_set
    from reasonrl.tasks import get_task

    task = get_task(cfg.data.task, **cfg.data.options)
    train = task.examples("train", cfg.data.n_examples, seed=cfg.run.seed)
    dev = in_loop_eval_set(task, cfg.eval.n_examples, run)
    docs = corpus_documents(train, cfg.data.template, cfg.data.tag_fraction, cfg.run.seed)
    texts = [prompt + completion for prompt, completion in docs[:5000]]
    tokenizer = ensure_tokenizer(run.path("tokenizer"), texts, cfg.tokenizer.vocab_size, cfg.tokenizer.path)
    return task, docs, dev, tokenizer


def corpus_documents(train: list[dict], template: str, tag_fraction: float = 1.0,
                     seed: int = 0) -> list[tuple[str, str]]:
    """(prompt, completion) training documents: the template's prompt, then the tagged completion
    for a `tag_fraction` of them and a plain one for the rest (`plain`: every one plain)."""
    from reasonrl.tasks import mixed_completions, plain_completion
    from reasonrl.tasks.prompts import build_prompt

    fmt = PROMPT_FORMAT[template]
    if template == "plain":
        if tag_fraction != 1.0:
            raise ValueError("data.tag_fraction applies to the r1 and r1_short templates; "
                             "template plain has no tags (leave tag_fraction at 1)")
        return [(build_prompt(ex, None, fmt), plain_completion(ex)) for ex in train]
    return list(zip([build_prompt(ex, None, fmt) for ex in train], mixed_completions(train, tag_fraction, seed)))


def _windows(cfg: PretrainConfig, tokenizer, docs):
    from reasonrl.data_utils import encode_documents, pack_windows

    return pack_windows(encode_documents(tokenizer, docs), cfg.data.seq_len)


def _total_steps(cfg: PretrainConfig) -> int:
    if cfg.budget.tokens > 0:
        return max(1, cfg.budget.tokens // (cfg.data.batch_size * cfg.data.seq_len))
    return cfg.budget.steps


def _init_model(cfg: PretrainConfig, tokenizer, ckpt: Path | None):
    from reasonrl.model import create, from_pretrained

    if ckpt is not None:
        return from_pretrained(ckpt)
    return create(cfg.model.preset, seed=cfg.run.seed, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **cfg.model.overrides)


def lm_loss(model, window):
    """Next-token CE + (lambda / D) * sum of MTP CEs + the sequence-wise balance loss."""
    import torch.nn.functional as F

    from reasonrl.model.mtp import mtp_loss

    ids, labels = window[:, :-1], window[:, 1:]  # (B, T)
    out = model.forward_train(ids)
    ce = F.cross_entropy(out.logits.flatten(0, 1), labels.flatten())
    loss, metrics = ce, {"ce_loss": ce.detach()}
    if out.mtp_logits:
        mtp = mtp_loss(out.mtp_logits, window, 1.0)  # row t of depth k predicts window[t + k + 1]
        loss = loss + model.config.mtp_loss_weight * mtp
        metrics["mtp_loss"] = mtp.detach()
    if out.aux_loss is not None:
        loss = loss + out.aux_loss
    return loss, metrics, out.moe_load
