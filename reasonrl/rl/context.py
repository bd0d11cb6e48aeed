"""Building, checkpointing and reporting an RL run: what `reasonrl rl` wires around each step."""

from __future__ import annotations

import copy
from typing import Any

from reasonrl.rl.grpo import RLContext


def load_policy_and_tokenizer(cfg, ckpt=None):
    """The policy (native or wrapped transformers model) and its own tokenizer; a checkpoint,
    when resuming, replaces model.path (it holds both)."""
    from reasonrl.model import load_policy
    from reasonrl.model.hf_policy import load_tokenizer

    source = str(ckpt) if ckpt is not None else cfg.model.path
    if source is None:
        raise ValueError("rl needs model.path: a reasonrl checkpoint or a local transformers model directory")
    if cfg.model.overrides:
        raise ValueError("model.overrides apply to freshly created models only; rl loads model.path as it is")
    gguf = None if ckpt is not None else cfg.model.gguf_file
    return load_policy(source, gguf_file=gguf).float(), load_tokenizer(source, gguf_file=gguf)


def build_context(cfg, run) -> tuple[RLContext, int, list[dict], Any]:
    import dataclasses

    from reasonrl.tasks import get_task
    from reasonrl.train.checkpoint import latest_checkpoint, load_trainer_state, restore_rng
    from reasonrl.train.loop import Trainer

    task = get_task(cfg.data.task, **cfg.data.options)
    train = task.examples("train", cfg.data.n_train, seed=cfg.run.seed)
    test = task.examples("test", cfg.eval.n_examples, seed=cfg.run.seed)
    ckpt = latest_checkpoint(run.path("checkpoints"))
    policy, tokenizer = load_policy_and_tokenizer(cfg, ckpt)
    updates = max(cfg.rl.steps * cfg.rl.mu * _minibatches(cfg), 1)
    optim = cfg.optim if cfg.optim.total_steps else dataclasses.replace(cfg.optim, total_steps=updates)
    critic = None
    if cfg.rl.algorithm == "ppo":
        from reasonrl.rl.ppo import ActorCritic

        policy = ActorCritic.create(policy, ckpt)
        critic = policy.critic
    trainer = Trainer(policy, optim, run)
    from reasonrl.rl.rollout import resolve_prompt_format

    fmt = resolve_prompt_format(cfg.data.prompt_format, cfg.model.path, _actor(policy))
    ctx = RLContext(cfg, policy, None, tokenizer, trainer, None, train, fmt, critic)
    ctx.reference = _frozen_copy(_actor(policy)) if cfg.rl.beta > 0 else None
    start = 0
    if ckpt is not None:
        state = load_trainer_state(ckpt)
        trainer.load_state_dict(state["trainer"])
        restore_rng(state["rng"])
        if ctx.reference is not None and state["extra"].get("reference") is not None:
            ctx.reference.load_state_dict(state["extra"]["reference"])
        start = int(state["step"])
        run.truncate_logs_after(start)
        run.print(f"rl: resuming from {ckpt}")
    return ctx, start, test, task


def _minibatches(cfg) -> int:
    rows = cfg.rl.prompts_per_step * cfg.rl.group_size
    size = cfg.rl.minibatch_size or rows
    return -(-rows // size)


def _actor(policy):
    return getattr(policy, "actor", policy)


def _frozen_copy(model):
    ref = copy.deepcopy(model)
    ref.requires_grad_(False)
    return ref.eval()


def maybe_reset_reference(ctx: RLContext, step: int) -> None:
    every = ctx.cfg.rl.ref_reset_every
    if ctx.reference is not None and every and step % every == 0:
        ctx.reference.load_state_dict(_actor(ctx.policy).state_dict())


def save(ctx: RLContext, run, step: int) -> None:
    from reasonrl.train.checkpoint import save_checkpoint

    extra: dict[str, Any] = {"data_cursor": step}
    if ctx.reference is not None and ctx.cfg.rl.ref_reset_every and step >= ctx.cfg.rl.ref_reset_every:
        extra["reference"] = ctx.reference.state_dict()
    save_checkpoint(run.path("checkpoints"), step, model=ctx.policy, tokenizer=ctx.tokenizer,
                    trainer_state=ctx.trainer.state_dict(), extra=extra, keep_last=ctx.cfg.checkpoint.keep_last, run=run)


def evaluate(ctx: RLContext, task, examples: list[dict]) -> dict[str, float]:
    from reasonrl.eval.accuracy import answer_accuracy
    from reasonrl.rl.rollout import build_prompt

    prompt_fn = lambda ex: build_prompt(ex, ctx.tokenizer, ctx.prompt_format, ctx.cfg.data.prefill)  # noqa: E731
    result = answer_accuracy(_actor(ctx.policy), ctx.tokenizer, examples, verifier=task.verifier, prompt_fn=prompt_fn,
                             max_new_tokens=ctx.cfg.rl.max_new_tokens, seed=ctx.cfg.run.seed)
    return {"eval/accuracy": result.accuracy, f"eval/{task.name}/pass@1": result.accuracy}


def step_metrics(batch, stats: dict[str, float], extra: dict[str, float]) -> dict[str, float]:
    """The registered metrics.jsonl keys for one step (docs/design.md)."""
    from reasonrl.eval.analytics import language_mixing_rate, reflection_rate, response_length_stats

    accuracy = batch.components.get("accuracy")
    correct = [bool(v) and v > 0 for v in accuracy] if accuracy is not None else None
    metrics = {k: v for k, v in batch.reward_metrics.items() if k != "reward/mean" and k != "reward/std"}
    for name, values in batch.components.items():  # over the rows kept (dynamic sampling drops some)
        scored = [v for v in values if v is not None]
        metrics[f"reward/{name}"] = sum(scored) / len(scored) if scored else 0.0
    metrics["reward/mean"] = float(batch.rewards.mean())
    metrics["reward/std"] = float(batch.rewards.std()) if len(batch) > 1 else 0.0
    if correct is not None:
        metrics["accuracy"] = sum(correct) / len(correct)
    metrics.update(response_length_stats(batch.lengths, correct))
    metrics["truncated_frac"] = sum(batch.truncated) / len(batch)
    metrics["reflection_rate"] = reflection_rate(batch.texts)
    metrics["lang_mix_rate"] = language_mixing_rate(batch.texts)
    metrics["tokens_per_s/gen"] = batch.gen_tokens_per_s
    for key in ("loss", "kl", "clip_frac/low", "clip_frac/high", "entropy", "lr", "grad_norm",
                "moe/load_max_over_mean", "value_loss", "skipped_steps"):
        if key in stats:
            metrics[key] = stats[key]
    metrics.update(extra)
    return metrics


def write_samples(run, step: int, batch, limit: int = 8) -> None:
    rows = []
    for i in range(min(limit, len(batch))):
        ex = batch.examples[i]
        rows.append({"step": step, "id": ex.get("id"), "prompt": batch.prompts[i], "answer": ex.get("answer"),
                     "completion": batch.texts[i], "reward": float(batch.rewards[i]),
                     "rewards": {k: v[i] for k, v in batch.components.items()}})
    run.log_samples(rows)
