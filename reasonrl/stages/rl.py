"""`reasonrl rl`: reinforcement learning with rule-based rewards (GRPO, Dr. GRPO, DAPO, GSPO, CISPO, PPO).

Works on a native checkpoint or any local transformers causal LM (`model.path=...`), with the
model's own tokenizer. Checkpointed and resumable through the stage runner: re-running the same
command continues from the latest complete checkpoint; Ctrl-C writes one and exits cleanly.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonrl.compute import ComputeSection
from reasonrl.config import FieldProblem, opt, section
from reasonrl.rl.config import RLSection
from reasonrl.stages.common import CheckpointSection, ModelSpec, RunSection, StageResult
from reasonrl.tasks.base import IN_LOOP_EVAL_SEED
from reasonrl.tasks.prompts import PromptFormatChoice
from reasonrl.train.loop import OptimConfig


@dataclass
class RLData:
    task: str = opt("arithmetic", "task giving prompts and references (see docs/tasks.md), or module:function")
    options: dict[str, Any] = opt(factory=lambda: {"digits": 2}, help="task options")
    n_train: int = opt(5000, "train-split examples in the prompt pool", ge=1)
    prompt_format: PromptFormatChoice = opt("auto", "r1_zero (R1-Zero template), r1_short (without the instruction), "
                                            "plain, chat (the tokenizer's chat template) or auto (the format recorded "
                                            "with the model; else r1_zero for native models, chat otherwise)")
    system: str | None = opt(None, "system message (null: the one recorded with the model, else the format's "
                             "default: the R1 instruction for chat and r1_zero)")
    prefill: str = opt("", "text that starts the assistant's turn, e.g. '<think>' (judged by the format reward; "
                       "empty: the one recorded with the model)")


@dataclass
class RLModelSpec(ModelSpec):
    lora: dict[str, Any] = opt(factory=dict, help="LoRA adapters on a transformers policy, e.g. {r: 8, alpha: 16, "
                               "dropout: 0.0, target_modules: all-linear} (extra: reasonrl[lora]; empty: full "
                               "fine-tuning): only the adapters train and are checkpointed; model/ is the merged model")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.lora:
            return
        import importlib.util

        from reasonrl.model.lora import lora_spec

        try:
            lora_spec(self.lora)
        except (TypeError, ValueError) as exc:
            raise FieldProblem("lora", str(exc)) from exc
        if importlib.util.find_spec("peft") is None:
            raise FieldProblem("lora", "LoRA needs peft: pip install 'reasonrl[lora]'")


@dataclass
class RLEval:
    every: int = opt(0, "held-out greedy accuracy every N steps (0: only at the end)", ge=0)
    n_examples: int = opt(200, "held-out dev examples (a fixed set, the same for every run seed)", ge=1)


@dataclass
class RLConfig:
    run: RunSection = section(RunSection, "run directory, seed, threads")
    compute: ComputeSection = section(ComputeSection, "device and precision")
    model: RLModelSpec = section(RLModelSpec, "policy to train")
    data: RLData = section(RLData, "prompts")
    rewards: dict[str, Any] = opt(factory=lambda: {"accuracy": 1.0, "format": 0.5},
                                  help="verifier -> weight (or {weight: w, ...options}); accuracy = the task's checker")
    reward_timeout_s: float = opt(10.0, "wall-clock limit per verifier call", gt=0)
    rl: RLSection = section(RLSection, "algorithm")
    optim: OptimConfig = section(OptimConfig, "optimizer and schedule")
    eval: RLEval = section(RLEval, "held-out evaluation")
    samples_every: int = opt(10, "write sample completions to samples.jsonl every N steps (0: never)", ge=0)
    checkpoint: CheckpointSection = section(CheckpointSection, "checkpoints")


def main(cfg: RLConfig) -> StageResult:
    from reasonrl.ranks import world_size
    from reasonrl.stages.runner import Schedule, run_stage

    if cfg.model.path is None:
        raise ValueError("rl needs model.path: a reasonrl checkpoint or a local transformers model directory")
    if cfg.model.overrides:
        raise ValueError("model.overrides apply to freshly created models only; rl loads model.path as it is")
    if cfg.model.lora and (cfg.rl.algorithm == "ppo" or cfg.rl.sampler != "torch"):
        raise ValueError("model.lora is supported with the critic-free algorithms and rl.sampler=torch only (for now)")
    if cfg.optim.activation_checkpointing and cfg.rl.share_prompt:
        raise ValueError("optim.activation_checkpointing does not combine with rl.share_prompt (yet): turn one off")
    if cfg.model.lora and cfg.run.strategy == "fsdp" and world_size() > 1:
        raise ValueError("model.lora is not supported with run.strategy=fsdp (yet): use run.strategy=ddp")
    problem = cfg.rl.distributed_problem(world_size())
    if problem:
        raise ValueError(f"rl: {problem}")
    schedule = Schedule(eval_every=cfg.eval.every, eval_at_end=True, checkpoint_every=cfg.checkpoint.every)
    return run_stage("rl", cfg, RLProgram, schedule)


class RLProgram:
    """The rl stage as the runner drives it (see stages/runner.py's StageProgram)."""

    def __init__(self, cfg: RLConfig, run, ckpt: Path | None):
        import torch

        from reasonrl.tasks import get_task

        torch.set_num_threads(cfg.run.threads)
        self.cfg, self.run, self.total_steps = cfg, run, cfg.rl.steps
        self.task = get_task(cfg.data.task, **cfg.data.options)
        train = self.task.examples("train", cfg.data.n_train, seed=cfg.run.seed)
        self.eval_examples = in_loop_eval_set(self.task, cfg.eval.n_examples, run)
        self.ctx = build_context(cfg, run, ckpt, train)
        self.zero_spread = ZeroSpreadMonitor(cfg.rl.warn_zero_spread_steps, run)

    def train_step(self, step: int) -> dict[str, Any]:
        import time

        from reasonrl.rl.step import ALGORITHMS
        from reasonrl.train.distributed import mean_over_ranks

        t0 = time.perf_counter()
        batch, stats = ALGORITHMS[self.cfg.rl.algorithm](self.ctx, step)
        metrics = {**step_metrics(batch, stats, self.ctx.prompt.prefill, self.task.step_check),
                   "step_time_s": time.perf_counter() - t0}
        metrics = mean_over_ranks(metrics)  # under torchrun: each rank's slice weighs the same
        self.zero_spread.observe(step + 1, metrics)
        if self.cfg.samples_every and step % self.cfg.samples_every == 0:
            write_samples(self.run, step + 1, batch)
        maybe_reset_reference(self.ctx, step + 1)
        return metrics

    def evaluate(self) -> dict[str, float]:
        from reasonrl.eval.accuracy import answer_accuracy

        prompt, tokenizer = self.ctx.prompt, self.ctx.tokenizer
        result = answer_accuracy(self.ctx.actor, tokenizer, self.eval_examples, verifier=self.task.verifier,
                                 prompt_fn=lambda ex: prompt.render(ex, tokenizer),
                                 max_new_tokens=self.cfg.rl.max_new_tokens, seed=IN_LOOP_EVAL_SEED,
                                 stop_strings=prompt.stop_strings, scorer=self.ctx.scorer)
        return in_loop_eval_metrics(self.task, self.eval_examples, result)

    def save_checkpoint(self, step: int) -> None:
        from reasonrl.train.checkpoint import save_checkpoint
        from reasonrl.train.fsdp import full_state_dict

        extra: dict[str, Any] = {"data_cursor": step}
        if self.ctx.reference is not None:  # the KL anchor is part of the run's state, reset or not
            extra["reference"] = full_state_dict(self.ctx.reference)
        save_checkpoint(self.run.path("checkpoints"), step, model=self.ctx.policy, tokenizer=self.ctx.tokenizer,
                        trainer_state=self.ctx.trainer.state_dict(), extra=extra,
                        keep_last=self.cfg.checkpoint.keep_last, run=self.run, annotate=self._annotate)

    def restore(self, ckpt: Path) -> int:
        from reasonrl.train.checkpoint import restore_trainer
        from reasonrl.train.fsdp import load_full_state_dict

        state = restore_trainer(ckpt, self.ctx.trainer)
        if self.ctx.reference is not None:
            reference = state["extra"].get("reference")
            if reference is None:
                raise KeyError(f"{ckpt} holds no KL reference (rl.beta > 0 needs one to resume exactly)")
            load_full_state_dict(self.ctx.reference, reference)
        return int(state["step"])

    def export(self, directory: Path) -> None:
        from reasonrl.model.lora import has_lora, merged_model
        from reasonrl.train.checkpoint import export_model

        # LoRA: checkpoints hold the adapters only; the final model is merged so plain transformers loads it
        model = merged_model(self.ctx.policy) if has_lora(self.ctx.policy) else self.ctx.policy
        export_model(directory, model, self.ctx.tokenizer, self._annotate)

    def _annotate(self, directory: Path) -> None:
        from reasonrl.tasks.prompts import write_model_card

        p = self.ctx.prompt
        write_model_card(directory, p.prompt_format, self.ctx.tokenizer, p.system, p.prefill, p.stop_strings)

    def stop_early(self, metrics: dict[str, Any]) -> bool:
        return False

    @contextlib.contextmanager
    def resources(self):
        from reasonrl.rewards import RewardRuntime

        with RewardRuntime(self.cfg.rewards, timeout_s=self.cfg.reward_timeout_s) as runtime:
            self.ctx.scorer = runtime
            yield runtime


def in_loop_eval_set(task, n: int, run) -> list[dict]:
    """The in-loop evaluation examples: the task's dev split, drawn with a fixed seed so every run
    seed is measured on the same problems (the final numbers on test are the eval stage's)."""
    from reasonrl.tasks import in_loop_eval_examples, in_loop_split

    if in_loop_split(task) != "dev":
        run.warn(f"task '{task.name}' has no dev split: the in-loop evaluation uses its test split")
    return in_loop_eval_examples(task, n)


def in_loop_eval_metrics(task, examples: list[dict], result) -> dict[str, float]:
    """eval/accuracy and eval/<task>/pass@1 (on dev), plus eval/cot_valid_rate and
    eval/right_answer_wrong_reasoning when the task has a step check."""
    from reasonrl.tasks.process import process_metrics

    texts = [text for row in result.texts for text in row]
    flat_examples = [ex for ex, row in zip(examples, result.texts) for _ in row]
    correct = [value > 0 for row in result.correct for value in row]
    return {"eval/accuracy": result.accuracy, f"eval/{task.name}/pass@1": result.accuracy,
            **process_metrics("eval", texts, flat_examples, correct, task.step_check)}


def build_context(cfg: RLConfig, run, ckpt: Path | None, train: list[dict]):
    """Policy (from the checkpoint when resuming), reference, trainer and sampler for the step."""
    import dataclasses

    from reasonrl.rl.step import RLContext
    from reasonrl.sampler.backends import make_sampler
    from reasonrl.train import distributed
    from reasonrl.train.fsdp import shard_model
    from reasonrl.train.loop import Trainer

    bundle = load_policy_and_tokenizer(cfg, ckpt)
    # moved before the optimizer exists, so its state lives beside the (fp32) weights; under FSDP the
    # policy and its reference copy stay on the CPU until sharding moves each rank's shard (PPO's
    # whole value head needs the device first)
    sharded = cfg.run.strategy == "fsdp" and distributed.active()
    device = "cpu" if sharded and cfg.rl.algorithm != "ppo" else cfg.compute.torch_device()
    policy, tokenizer = bundle.policy.to(device).train(), bundle.tokenizer
    reference = _frozen_copy(policy) if cfg.rl.beta > 0 else None
    if reference is not None and sharded:
        shard_model(reference)  # sharded like the policy, not a whole copy per rank
    actor = policy
    if cfg.rl.algorithm == "ppo":
        from reasonrl.rl.ppo import ActorCritic

        policy = ActorCritic.create(actor, ckpt)
    steps = cfg.rl.optimizer_steps()
    optim = cfg.optim if cfg.optim.total_steps else dataclasses.replace(cfg.optim, total_steps=steps)
    return RLContext(rl=cfg.rl, seed=cfg.run.seed, grad_accum=cfg.optim.grad_accum, policy=policy, actor=actor,
                     reference=reference, tokenizer=tokenizer,
                     trainer=Trainer(policy, optim, run, strategy=cfg.run.strategy),
                     sampler=make_sampler(cfg.rl.sampler, actor, tokenizer), scorer=None, reward_spec=cfg.rewards,
                     train_examples=train, prompt=prompt_spec(cfg, bundle), compute=cfg.compute)


def load_policy_and_tokenizer(cfg: RLConfig, ckpt: Path | None):
    """The policy bundle (policy, tokenizer, card); a checkpoint, when resuming, replaces model.path
    (with LoRA it holds only the adapters: the base is loaded from model.path, then they are)."""
    from reasonrl.model import load_policy_bundle

    if not cfg.model.lora:
        if ckpt is not None:
            return load_policy_bundle(str(ckpt))
        return load_policy_bundle(cfg.model.path, gguf_file=cfg.model.gguf_file)
    from reasonrl.model.lora import add_lora, load_adapter, lora_spec

    bundle = load_policy_bundle(cfg.model.path, gguf_file=cfg.model.gguf_file)
    add_lora(bundle.policy, lora_spec(cfg.model.lora))
    if ckpt is not None:
        load_adapter(bundle.policy, ckpt)
    return bundle


def prompt_spec(cfg: RLConfig, bundle):
    """How prompts are rendered: `data.prompt_format` (auto: the model's card), with the config's
    system message and prefill when set, and the run's stop strings."""
    import dataclasses

    spec = bundle.prompt_spec(cfg.data.prompt_format)
    return dataclasses.replace(spec, system=spec.system if cfg.data.system is None else cfg.data.system,
                               prefill=cfg.data.prefill or spec.prefill, stop_strings=tuple(cfg.rl.stop_strings))


def _frozen_copy(model):
    import copy

    ref = copy.deepcopy(model)
    ref.requires_grad_(False)
    return ref.eval()


def maybe_reset_reference(ctx, step: int) -> None:
    every = ctx.rl.ref_reset_every
    if ctx.reference is not None and every and step % every == 0:
        ctx.reference.load_state_dict(ctx.actor.state_dict())


class ZeroSpreadMonitor:
    """Warns once when every group's rewards have been equal for `patience` steps in a row: the
    gradient is then exactly zero, and peers train on silently."""

    def __init__(self, patience: int, run):
        self.patience, self.run, self.streak, self.warned = patience, run, 0, False

    def observe(self, step: int, metrics: dict[str, Any]) -> None:
        self.streak = self.streak + 1 if metrics.get("zero_std_frac", 0.0) >= 1.0 else 0
        if self.warned or not self.patience or self.streak < self.patience:
            return
        self.warned = True
        self.run.warn(zero_spread_message(step, self.streak, metrics))


def zero_spread_message(step: int, streak: int, metrics: dict[str, Any]) -> str:
    failures = ", ".join(f"{key.removeprefix('reward/')}={value:.2f}" for key, value in sorted(metrics.items())
                         if key.endswith(("/none_frac", "/timeout_frac", "/error_frac")) and value > 0)
    mean = metrics.get("reward/mean", 0.0)
    cause = ("no completion earned any reward: likely none matched the answer format (try data.prefill='<think>', "
             "a chat prompt format, a format reward, or more max_new_tokens)" if mean == 0 else
             "every completion of each prompt scored the same (prompts too easy or too hard for this policy)")
    return (f"step {step}: rewards had zero spread within every group for {streak} steps in a row, so the policy "
            f"gradient is 0; {cause}; verifier failures: {failures or 'none'}")


def step_metrics(batch, stats: dict[str, float], prefill: str = "", step_check=None) -> dict[str, float]:
    """The registered metrics.jsonl keys for one step (docs/design.md); with the task's
    `step_check`, also process/cot_valid_rate and process/right_answer_wrong_reasoning."""
    from reasonrl.eval.analytics import language_mixing_rate, reflection_rate, response_length_stats
    from reasonrl.tasks.process import process_metrics

    accuracy = batch.components.get("accuracy")
    correct = [bool(v) and v > 0 for v in accuracy] if accuracy is not None else None
    metrics = {k: v for k, v in batch.reward_metrics.items() if k not in ("reward/mean", "reward/std")}
    for name, values in batch.components.items():  # over the rows kept (dynamic sampling drops some)
        scored = [v for v in values if v is not None]
        metrics[f"reward/{name}"] = sum(scored) / len(scored) if scored else 0.0
    metrics["reward/mean"] = float(batch.rewards.mean())
    metrics["reward/std"] = float(batch.rewards.std()) if len(batch) > 1 else 0.0
    if correct is not None:
        metrics["accuracy"] = sum(correct) / len(correct)
    metrics.update(response_length_stats(batch.lengths, correct))
    metrics["truncated_frac"] = sum(batch.truncated) / len(batch)
    metrics.update(process_metrics("process", batch.texts, batch.examples, correct, step_check))
    metrics["reflection_rate"] = reflection_rate(batch.texts)
    metrics["lang_mix_rate"] = language_mixing_rate(batch.texts, prefill=prefill)
    metrics["tokens_per_s/gen"] = batch.gen_tokens_per_s
    metrics.update(batch.timings)
    for key in ("loss", "kl", "clip_frac/low", "clip_frac/high", "entropy", "lr", "grad_norm",
                "moe/load_max_over_mean", "value_loss", "skipped_steps", "zero_std_frac", "sampling_rounds",
                "tokens_per_s/train"):
        if key in stats:
            metrics[key] = stats[key]
    metrics.update({k: v for k, v in stats.items() if k.startswith("time/")})  # the step's phases
    metrics.update({k: v for k, v in stats.items() if k.startswith("mismatch/")})  # sampler vs trainer
    return metrics


def write_samples(run, step: int, batch, limit: int = 8) -> None:
    rows = []
    for i in range(min(limit, len(batch))):
        ex = batch.examples[i]
        rows.append({"step": step, "id": ex.get("id"), "prompt": batch.prompts[i], "answer": ex.get("answer"),
                     "completion": batch.texts[i], "reward": float(batch.rewards[i]),
                     "rewards": {k: v[i] for k, v in batch.components.items()}})
    run.log_samples(rows)
