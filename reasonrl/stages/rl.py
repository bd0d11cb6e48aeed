"""`reasonrl rl`: reinforcement learning with rule-based rewards (GRPO, Dr. GRPO, DAPO, PPO).

Works on a native checkpoint or any local transformers causal LM (`model.path=...`), with the
model's own tokenizer. Checkpointed and resumable: re-running the same command continues from
the latest complete checkpoint; Ctrl-C writes one and exits cleanly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reasonrl.config import opt, section
from reasonrl.stages.common import CheckpointSection, ModelSpec, RunSection, StageResult
from reasonrl.train.loop import OptimConfig


@dataclass
class RLData:
    task: str = opt("arithmetic", "task giving prompts and references (see docs/tasks.md), or module:function")
    options: dict[str, Any] = opt(factory=lambda: {"digits": 2}, help="task options")
    n_train: int = opt(5000, "train-split examples in the prompt pool")
    prompt_format: str = opt("auto", "r1_zero (R1-Zero template), r1_short (without the instruction), plain, chat "
                             "(the tokenizer's chat template) or auto (the format recorded with the model; else "
                             "r1_zero for native models, chat for transformers models)")
    prefill: str = opt("", "text that starts the assistant's turn, e.g. '<think>' (judged by the format reward)")


@dataclass
class RLSection:
    algorithm: str = opt("grpo", "grpo (critic-free; also Dr. GRPO / DAPO via the keys below) or ppo (value head + GAE)")
    steps: int = opt(100, "RL steps (one rollout batch each)")
    prompts_per_step: int = opt(16, "prompts per step")
    group_size: int = opt(8, "completions sampled per prompt (G)")
    advantage: str = opt("grpo", "grpo | dr_grpo | rloo | reinforce_pp (group-relative baselines)")
    aggregation: str = opt("seq_mean_token_mean", "seq_mean_token_mean (TRL grpo) | token_mean (DAPO) | constant (Dr. GRPO)")
    eps_low: float = opt(0.2, "lower clip range of the ratio")
    eps_high: float = opt(0.2, "upper clip range of the ratio (DAPO clip-higher: 0.28)")
    beta: float = opt(0.0, "k3 KL coefficient to the reference (0: no reference model is kept)")
    ref_reset_every: int = opt(0, "reset the reference to the current policy every N steps (0: never)")
    mu: int = opt(1, "passes over each rollout batch")
    minibatch_size: int = opt(0, "rows per optimizer step (0: the whole rollout batch)")
    max_new_tokens: int = opt(64, "generation budget per completion")
    temperature: float = opt(1.0, "rollout sampling temperature")
    top_p: float = opt(1.0, "rollout nucleus sampling")
    stop_strings: list[str] = opt(factory=lambda: ["</answer>"], help="strings that end a completion (eos always does)")
    dynamic_sampling: bool = opt(False, "DAPO: drop groups whose rewards are all equal and sample more")
    max_sampling_rounds: int = opt(3, "cap on sampling rounds per step with dynamic sampling")
    overlong_filter: bool = opt(False, "DAPO: truncated completions get no loss")
    gamma: float = opt(1.0, "PPO: discount")
    lam: float = opt(0.95, "PPO: GAE lambda")
    vf_coef: float = opt(0.5, "PPO: value loss weight")
    value_clip: float = opt(0.2, "PPO: value clipping range")


@dataclass
class RLEval:
    every: int = opt(0, "held-out greedy accuracy every N steps (0: only at the end)")
    n_examples: int = opt(200, "held-out test examples")


@dataclass
class RLConfig:
    run: RunSection = section(RunSection, "run directory, seed, threads")
    model: ModelSpec = section(ModelSpec, "policy to train")
    data: RLData = section(RLData, "prompts")
    rewards: dict[str, Any] = opt(factory=lambda: {"accuracy": 1.0, "format": 0.5},
                                  help="verifier -> weight (or {weight: w, ...options}); accuracy = the task's checker")
    reward_timeout_s: float = opt(10.0, "wall-clock limit per verifier call")
    rl: RLSection = section(RLSection, "algorithm")
    optim: OptimConfig = section(OptimConfig, "optimizer and schedule")
    eval: RLEval = section(RLEval, "held-out evaluation")
    samples_every: int = opt(10, "write sample completions to samples.jsonl every N steps")
    checkpoint: CheckpointSection = section(CheckpointSection, "checkpoints")


def main(cfg: RLConfig) -> StageResult:
    from reasonrl.rewards import RewardRuntime
    from reasonrl.rl.context import build_context, evaluate, save
    from reasonrl.rl.rollout import record_prompt_format

    from reasonrl.stages.common import prepare_run

    run = prepare_run(cfg, "rl")
    ctx, start, test_examples, task = build_context(cfg, run)
    metrics: dict[str, Any] = {}
    step = start
    with RewardRuntime(cfg.rewards, timeout_s=cfg.reward_timeout_s) as runtime:
        ctx.runtime = runtime
        with run.progress(cfg.rl.steps, f"rl ({cfg.rl.algorithm})") as bar:
            bar.advance(start)
            try:
                for step in range(start, cfg.rl.steps):
                    metrics = _one_step(ctx, run, step, task, test_examples)
                    bar.advance(1, reward=metrics["reward/mean"], acc=metrics.get("accuracy", 0.0))
                    if (step + 1) % cfg.checkpoint.every == 0 or step + 1 == cfg.rl.steps:
                        save(ctx, run, step + 1)
                step = cfg.rl.steps
            except KeyboardInterrupt:
                run.print(f"rl: interrupted; writing a checkpoint at step {step}")
                save(ctx, run, step)
                raise
    final = run.path("model")
    ctx.policy.save_pretrained(final)
    ctx.tokenizer.save_pretrained(final)
    record_prompt_format(final, ctx.prompt_format)
    result = evaluate(ctx, task, test_examples)
    run.log_metrics({"step": cfg.rl.steps, **result})
    run.print(f"rl: held-out greedy accuracy {result['eval/accuracy']:.3f}; policy written to {final}")
    return StageResult({"model": str(final)}, {**metrics, **result})


def _one_step(ctx, run, step: int, task, test_examples) -> dict[str, Any]:
    import time

    from reasonrl.rl.context import evaluate, maybe_reset_reference, step_metrics, write_samples

    t0 = time.perf_counter()
    if ctx.cfg.rl.algorithm == "ppo":
        from reasonrl.rl.ppo import ppo_step

        batch, stats, extra = ppo_step(ctx, step)
    else:
        from reasonrl.rl.grpo import gather, update

        batch, adv, extra = gather(ctx, step)
        t_gen = time.perf_counter() - t0
        stats = update(ctx, batch, adv, step)
        extra["tokens_per_s/train"] = float(batch.mask.sum()) * ctx.cfg.rl.mu / max(time.perf_counter() - t0 - t_gen, 1e-9)
    metrics = {"step": step + 1, **step_metrics(batch, stats, extra), "step_time_s": time.perf_counter() - t0}
    if ctx.cfg.eval.every and (step + 1) % ctx.cfg.eval.every == 0:
        metrics.update(evaluate(ctx, task, test_examples))
    run.log_metrics(metrics)
    if ctx.cfg.samples_every and step % ctx.cfg.samples_every == 0:
        write_samples(run, step + 1, batch)
    maybe_reset_reference(ctx, step + 1)
    return metrics
