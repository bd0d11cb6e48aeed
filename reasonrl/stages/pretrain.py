"""`reasonrl pretrain`: a native DeepSeek-V3-style base model from scratch on a generated corpus.

Next-token loss + MTP loss on packed sequences, with in-loop held-out answer accuracy. Budgets
are in steps or tokens (optionally "until held-out accuracy >= X"), never wall time, so a run is
reproducible; re-running the same command resumes from the latest complete checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reasonrl.config import opt, section
from reasonrl.stages.common import CheckpointSection, ModelSpec, RunSection, StageResult
from reasonrl.train.loop import OptimConfig


@dataclass
class TokenizerSection:
    path: str | None = opt(None, "use this tokenizer directory instead of training one")
    vocab_size: int = opt(512, "vocabulary size of the byte-level BPE trained on the corpus")


@dataclass
class CorpusSection:
    task: str = opt("arithmetic", "task generating the corpus (see docs/tasks.md)")
    options: dict[str, Any] = opt(factory=lambda: {"digits": 2, "corpus_error_rate": 0.5},
                                  help="task options, e.g. {digits: 2, corpus_error_rate: 0.5}")
    n_examples: int = opt(7000, "training documents generated from the task's train split")
    template: str = opt("r1", "document format: r1 (R1-Zero prompt + <think>/<answer> completion), r1_short "
                        "(the conversation without the instruction) or plain (question, solution, answer)")
    seq_len: int = opt(128, "tokens per packed training sequence")
    batch_size: int = opt(16, "sequences per optimizer step")


@dataclass
class BudgetSection:
    steps: int = opt(600, "optimizer steps (ignored when `tokens` > 0)")
    tokens: int = opt(0, "train for this many tokens instead of `steps` (0: use steps)")
    until_accuracy: float | None = opt(None, "stop early once held-out greedy accuracy reaches this value")


@dataclass
class EvalSection:
    every: int = opt(200, "evaluate held-out answer accuracy every N steps (and at the end); 0 disables")
    n_examples: int = opt(200, "held-out test examples per evaluation")
    max_new_tokens: int = opt(64, "generation budget per answer")


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
    from reasonrl.rl.rollout import record_prompt_format
    from reasonrl.stages.common import prepare_run

    if cfg.data.template not in PROMPT_FORMAT:
        raise ValueError(f"data.template must be one of {', '.join(PROMPT_FORMAT)}, got {cfg.data.template!r}")

    run = prepare_run(cfg, "pretrain")
    task, train_docs, test_examples, tokenizer = _prepare_data(cfg, run)
    windows = _windows(cfg, tokenizer, train_docs)
    total_steps = _total_steps(cfg)
    model, trainer, start = _init_or_resume(cfg, run, tokenizer, total_steps)
    run.print(f"pretrain: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, "
              f"{len(windows)} windows of {cfg.data.seq_len} tokens, steps {start}->{total_steps}")
    metrics: dict[str, Any] = {}
    with run.progress(total_steps, "pretrain") as bar:
        bar.advance(start)
        for step in range(start, total_steps):
            metrics = _train_step(cfg, trainer, windows, step)
            done = step + 1 == total_steps
            if cfg.eval.every and ((step + 1) % cfg.eval.every == 0 or done):
                metrics.update(_evaluate(cfg, model, tokenizer, task, test_examples))
                if cfg.budget.until_accuracy is not None and metrics["eval/accuracy"] >= cfg.budget.until_accuracy:
                    done = True
            run.log_metrics({"step": step + 1, **metrics})
            bar.advance(1, loss=metrics["loss"], **({"acc": metrics["eval/accuracy"]} if "eval/accuracy" in metrics else {}))
            if done or (step + 1) % cfg.checkpoint.every == 0:
                _save(cfg, run, model, tokenizer, trainer, step + 1)
            if done:
                break
    final = run.path("model")
    model.save_pretrained(final)
    tokenizer.save_pretrained(final)
    record_prompt_format(final, PROMPT_FORMAT[cfg.data.template])
    run.print(f"pretrain: base model written to {final}")
    return StageResult({"model": str(final)}, metrics)


def _prepare_data(cfg: PretrainConfig, run):
    from reasonrl.data_utils import ensure_tokenizer
    from reasonrl.rl.rollout import build_prompt
    from reasonrl.tasks import corpus_text, get_task, r1_completion, render_solution

    task = get_task(cfg.data.task, **cfg.data.options)
    train = task.examples("train", cfg.data.n_examples, seed=cfg.run.seed)
    test = task.examples("test", cfg.eval.n_examples, seed=cfg.run.seed)
    fmt = PROMPT_FORMAT[cfg.data.template]
    if cfg.data.template == "plain":
        docs = [(build_prompt(ex, None, fmt), render_solution(ex)[len(ex["prompt"]) + 1:]) for ex in train]
    else:
        docs = [(build_prompt(ex, None, fmt), r1_completion(ex)) for ex in train]
    texts = [corpus_text(ex, cfg.data.template) for ex in train[:5000]]
    tokenizer = ensure_tokenizer(run.path("tokenizer"), texts, cfg.tokenizer.vocab_size, cfg.tokenizer.path)
    return task, docs, test, tokenizer


def _windows(cfg: PretrainConfig, tokenizer, docs):
    from reasonrl.data_utils import encode_documents, pack_windows

    return pack_windows(encode_documents(tokenizer, docs), cfg.data.seq_len)


def _total_steps(cfg: PretrainConfig) -> int:
    if cfg.budget.tokens > 0:
        return max(1, cfg.budget.tokens // (cfg.data.batch_size * cfg.data.seq_len))
    return cfg.budget.steps


def _init_or_resume(cfg: PretrainConfig, run, tokenizer, total_steps: int):
    import dataclasses

    from reasonrl.model import create, from_pretrained
    from reasonrl.train.checkpoint import latest_checkpoint, load_trainer_state, restore_rng
    from reasonrl.train.loop import Trainer

    optim = cfg.optim if cfg.optim.total_steps else dataclasses.replace(cfg.optim, total_steps=total_steps)
    ckpt = latest_checkpoint(run.path("checkpoints"))
    if ckpt is None:
        model = create(cfg.model.preset, seed=cfg.run.seed, vocab_size=len(tokenizer),
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, **cfg.model.overrides)
        return model, Trainer(model, optim, run), 0
    model = from_pretrained(ckpt)
    trainer = Trainer(model, optim, run)
    state = load_trainer_state(ckpt)
    trainer.load_state_dict(state["trainer"])
    restore_rng(state["rng"])
    run.truncate_logs_after(state["step"])
    run.print(f"pretrain: resuming from {ckpt}")
    return model, trainer, int(state["step"])


def _train_step(cfg: PretrainConfig, trainer, windows, step: int) -> dict[str, float]:
    from reasonrl.data_utils import batch_indices

    rows = windows[batch_indices(len(windows), cfg.data.batch_size, step, cfg.run.seed)]
    micro = rows.chunk(max(cfg.optim.grad_accum, 1))
    return trainer.step(lm_loss, micro)


def lm_loss(model, window):
    """Next-token CE + (lambda / D) * sum of MTP CEs + the sequence-wise balance loss."""
    import torch.nn.functional as F

    ids, labels = window[:, :-1], window[:, 1:]  # (B, T)
    out = model.forward_train(ids)
    ce = F.cross_entropy(out.logits.flatten(0, 1), labels.flatten())
    loss, metrics = ce, {}
    if out.mtp_logits:
        mtp = sum(F.cross_entropy(lg.flatten(0, 1), window[:, k + 1:k + 1 + lg.shape[1]].flatten())
                  for k, lg in enumerate(out.mtp_logits, start=1)) / len(out.mtp_logits)
        loss = loss + model.config.mtp_loss_weight * mtp
        metrics["mtp_loss"] = mtp.detach()
    if out.aux_loss is not None:
        loss = loss + out.aux_loss
    metrics["ce_loss"] = ce.detach()
    return loss, metrics, out.moe_load


def _evaluate(cfg: PretrainConfig, model, tokenizer, task, examples) -> dict[str, float]:
    from reasonrl.eval.accuracy import answer_accuracy
    from reasonrl.rl.rollout import build_prompt

    prompt_fn = lambda ex: build_prompt(ex, tokenizer, PROMPT_FORMAT[cfg.data.template])  # noqa: E731
    result = answer_accuracy(model, tokenizer, examples, verifier=task.verifier, prompt_fn=prompt_fn,
                             max_new_tokens=cfg.eval.max_new_tokens, seed=cfg.run.seed)
    return {"eval/accuracy": result.accuracy, f"eval/{task.name}/pass@1": result.accuracy}


def _save(cfg: PretrainConfig, run, model, tokenizer, trainer, step: int) -> None:
    from reasonrl.train.checkpoint import save_checkpoint

    save_checkpoint(run.path("checkpoints"), step, model=model, tokenizer=tokenizer,
                    trainer_state=trainer.state_dict(), extra={"data_cursor": step},
                    keep_last=cfg.checkpoint.keep_last, run=run)
