"""`reasonrl rejection`: R1's rejection sampling. A model answers a task's train prompts `k` times;
only correct, well-formed, single-language, bounded-length, distinct responses are kept, as SFT
rows (`dataset.jsonl`, what `reasonrl sft data.path=...` reads) with the counts of what each
filter rejected (`acceptance.json`).

Runs on the stage runner: one step generates, scores and filters one batch of prompts, and the
rows accepted so far are checkpointed, so an interrupted run resumes where it stopped and writes
the same dataset as an uninterrupted one (every batch's prompts and sampling seed derive from
(seed, step)).
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from reasonrl.config import opt, section
from reasonrl.sampler.backends import SamplerKind
from reasonrl.stages.common import ModelSpec, RunSection, StageResult
from reasonrl.tasks.prompts import PromptFormatChoice

# in the order they are applied: a rejected sample is counted under the first filter it fails
FILTERS = ("correct", "format", "language", "max_tokens", "valid_chain", "dedupe", "per_prompt")
ROWS_FILE, COUNTS_FILE = "rows.jsonl", "counts.json"  # a checkpoint: the rows kept so far, counts per batch
DATASET_FILE, ACCEPTANCE_FILE = "dataset.jsonl", "acceptance.json"


@dataclass
class RejectionData:
    task: str = opt("arithmetic", "task whose train split gives the prompts (see docs/tasks.md), or module:function")
    options: dict[str, Any] = opt(factory=lambda: {"digits": 2}, help="task options")
    n_prompts: int = opt(256, "train-split prompts to sample (never dev/test)", ge=1)
    prompt_format: PromptFormatChoice = opt("auto", "how prompts are rendered for the sampled model (auto: its card)")
    system: str | None = opt(None, "system message (null: the model's card, else the format's default)")
    prefill: str = opt("", "text that starts the assistant's turn, e.g. '<think>' (empty: the model's card); "
                       "it is part of each kept response")


@dataclass
class RejectionSampling:
    k: int = opt(8, "samples per prompt", ge=1)
    temperature: float = opt(0.6, "sampling temperature (0: greedy, which makes the k samples identical)", ge=0)
    top_p: float = opt(0.95, "nucleus sampling mass", gt=0, le=1)
    max_new_tokens: int = opt(256, "generation budget per sample", ge=1)
    batch_prompts: int = opt(8, "prompts per generation batch: one runner step, checkpointed", ge=1)
    stop_strings: list[str] | None = opt(None, "strings that end a sample (null: the model's card; eos always does)")
    sampler: SamplerKind = opt("torch", "generation engine: torch (built in) or vllm (extra: [vllm], CUDA only)")


@dataclass
class RejectionFilters:
    format: bool = opt(True, "keep only responses whose format reward is 1 (<think>...</think><answer>...</answer>); "
                       "correctness (the task's accuracy verifier > 0) is always required")
    language: bool = opt(True, "keep only responses whose chain of thought is in one language (language reward 1)")
    max_tokens: int = opt(0, "longest kept response in tokens; truncated ones are always dropped "
                          "(0: 90% of sampling.max_new_tokens)", ge=0)
    valid_chain: bool = opt(True, "keep only valid reasoning chains when the task has a step check (else a no-op)")
    dedupe: bool = opt(True, "drop a response identical to one already kept for the same prompt")
    per_prompt: int = opt(4, "most responses kept per prompt (0: no limit)", ge=0)


@dataclass
class RejectionCheckpoint:
    every: int = opt(1, "save the accepted rows every N batches (and at the end)", ge=1)
    keep_last: int = opt(2, "number of complete checkpoints kept (0: all)", ge=0)


@dataclass
class RejectionConfig:
    run: RunSection = section(RunSection, "run directory, seed, threads")
    model: ModelSpec = section(ModelSpec, "the model to sample (model.path)")
    data: RejectionData = section(RejectionData, "prompts")
    sampling: RejectionSampling = section(RejectionSampling, "generation")
    filters: RejectionFilters = section(RejectionFilters, "which samples are kept")
    reward_timeout_s: float = opt(10.0, "wall-clock limit per verifier call", gt=0)
    checkpoint: RejectionCheckpoint = section(RejectionCheckpoint, "checkpoints")


def main(cfg: RejectionConfig) -> StageResult:
    check_config(cfg, "rejection")
    return run_stage_for(cfg, "rejection")


def check_config(cfg: RejectionConfig, name: str, key: str = "model") -> None:
    """`key`: what the sampled model is called in the user's config (distill: teacher)."""
    if cfg.model.path is None:
        raise ValueError(f"{name} needs {key}.path: the model to sample, a reasonrl checkpoint or a local "
                         "transformers model directory")
    if cfg.model.overrides:
        raise ValueError(f"{key}.overrides apply to freshly created models only; the sampled model loads as it is")


def run_stage_for(cfg: RejectionConfig, name: str) -> StageResult:
    from reasonrl.stages.runner import Schedule, run_stage

    schedule = Schedule(eval_every=0, eval_at_end=False, checkpoint_every=cfg.checkpoint.every)
    return run_stage(name, cfg, RejectionProgram, schedule)


# ---- judging samples ------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One scored completion of prompt `group` (its index in the batch)."""

    group: int
    response: str  # prefill + completion: the whole assistant text
    tokens: int
    truncated: bool
    scores: dict[str, float | None]  # verifier -> value (accuracy, format, language)
    valid_chain: bool | None = None  # the task's step check; None: no check


def reward_spec(filters: RejectionFilters) -> dict[str, float]:
    """The verifiers the enabled filters need (weights are irrelevant: each is judged alone)."""
    spec = {"accuracy": 1.0}
    if filters.format:
        spec["format"] = 1.0
    if filters.language:
        spec["language"] = 1.0
    return spec


def make_samples(texts: list[str], examples: list[dict], groups: list[int], lengths: list[int],
                 truncated: list[bool], components: dict[str, list], prefill: str = "",
                 step_check: Callable | None = None) -> list[Sample]:
    """Samples of completions `texts` (row r answers `examples[groups[r]]`), with the reward
    runtime's per-verifier `components`."""
    samples = []
    for r, text in enumerate(texts):
        response = prefill + text
        example = examples[groups[r]]
        valid = None
        if step_check is not None:
            verdict = step_check(response, example)
            valid = None if verdict is None else bool(verdict)
        samples.append(Sample(groups[r], response, int(lengths[r]), bool(truncated[r]),
                              {name: values[r] for name, values in components.items()}, valid))
    return samples


def first_failed(sample: Sample, filters: RejectionFilters, max_tokens: int) -> str | None:
    """The first per-sample filter `sample` fails, or None (dedupe and per_prompt need the batch)."""
    if not (sample.scores.get("accuracy") or 0.0) > 0:
        return "correct"
    if filters.format and sample.scores.get("format") != 1.0:
        return "format"
    language = sample.scores.get("language")
    if filters.language and language is not None and language < 1.0:  # None: no words, nothing mixed
        return "language"
    if sample.truncated or sample.tokens > max_tokens:
        return "max_tokens"
    if filters.valid_chain and sample.valid_chain is False:
        return "valid_chain"
    return None


def rejection_reasons(samples: list[Sample], filters: RejectionFilters, max_tokens: int) -> list[str | None]:
    """Per sample, the filter that rejects it or None when it is kept. Samples are judged in
    order, so among duplicates and beyond `per_prompt` the earliest ones are kept."""
    seen: dict[int, set[str]] = {}
    kept: dict[int, int] = {}
    reasons: list[str | None] = []
    for sample in samples:
        reason = first_failed(sample, filters, max_tokens)
        key = sample.response.strip()
        if reason is None and filters.dedupe and key in seen.get(sample.group, ()):
            reason = "dedupe"
        if reason is None and filters.per_prompt and kept.get(sample.group, 0) >= filters.per_prompt:
            reason = "per_prompt"
        if reason is None:
            seen.setdefault(sample.group, set()).add(key)
            kept[sample.group] = kept.get(sample.group, 0) + 1
        reasons.append(reason)
    return reasons


def resolved_max_tokens(cfg: RejectionConfig) -> int:
    return cfg.filters.max_tokens or max(1, int(0.9 * cfg.sampling.max_new_tokens))


# ---- counts ---------------------------------------------------------------------------------
def batch_counts(samples: list[Sample], reasons: list[str | None], n_prompts: int) -> dict[str, Any]:
    """What one batch contributes to acceptance.json."""
    per_prompt = [0] * n_prompts
    for sample, reason in zip(samples, reasons):
        per_prompt[sample.group] += reason is None
    return {"prompts": n_prompts, "samples": len(samples), "kept": sum(per_prompt),
            "rejected": {f: sum(r == f for r in reasons) for f in FILTERS}, "kept_per_prompt": per_prompt,
            "tokens_all": sum(s.tokens for s in samples),
            "tokens_kept": sum(s.tokens for s, r in zip(samples, reasons) if r is None)}


def total_counts(batches: list[dict[str, Any]]) -> dict[str, Any]:
    total = {"prompts": 0, "samples": 0, "kept": 0, "rejected": {f: 0 for f in FILTERS}, "kept_per_prompt": {},
             "tokens_all": 0, "tokens_kept": 0}
    for counts in batches:
        for key in ("prompts", "samples", "kept", "tokens_all", "tokens_kept"):
            total[key] += counts[key]
        for f in FILTERS:
            total["rejected"][f] += counts["rejected"][f]
        for n in counts["kept_per_prompt"]:
            total["kept_per_prompt"][str(n)] = total["kept_per_prompt"].get(str(n), 0) + 1
    return total


def acceptance_report(batches: list[dict[str, Any]], cfg: RejectionConfig) -> dict[str, Any]:
    """What acceptance.json holds: samples = kept + sum(rejected)."""
    tally = total_counts(batches)
    n, kept = tally["samples"], tally["kept"]
    return {"prompts": tally["prompts"], "samples": n, "kept": kept, "rejected": dict(tally["rejected"]),
            "filters": active_filters(cfg.filters), "max_tokens": resolved_max_tokens(cfg),
            "kept_per_prompt": dict(sorted(tally["kept_per_prompt"].items(), key=lambda kv: int(kv[0]))),
            "acceptance_rate": kept / n if n else 0.0,
            "mean_tokens": {"all": tally["tokens_all"] / n if n else 0.0,
                            "kept": tally["tokens_kept"] / kept if kept else 0.0}}


def active_filters(filters: RejectionFilters) -> list[str]:
    off = {"format": not filters.format, "language": not filters.language, "valid_chain": not filters.valid_chain,
           "dedupe": not filters.dedupe, "per_prompt": not filters.per_prompt}
    return [f for f in FILTERS if not off.get(f, False)]


def step_metrics(samples: list[Sample], reasons: list[str | None], batch) -> dict[str, float]:
    n = max(len(samples), 1)
    kept = [s.tokens for s, r in zip(samples, reasons) if r is None]
    metrics = {"accept_rate": len(kept) / n, "kept": float(len(kept)), "samples": float(len(samples)),
               "accuracy": sum((s.scores.get("accuracy") or 0.0) > 0 for s in samples) / n,
               "length/mean": sum(s.tokens for s in samples) / n,
               "length/kept_mean": sum(kept) / len(kept) if kept else 0.0,
               "truncated_frac": sum(s.truncated for s in samples) / n,
               "tokens_per_s/gen": batch.gen_tokens_per_s, **batch.timings}
    metrics.update({f"rejected/{f}": sum(r == f for r in reasons) / n for f in FILTERS})
    return metrics


# ---- the program ----------------------------------------------------------------------------
class RejectionProgram:
    """The rejection stage as the runner drives it (see stages/runner.py's StageProgram): nothing
    trains; a step is one batch of prompts, and the state is the rows accepted so far."""

    def __init__(self, cfg: RejectionConfig, run, ckpt: Path | None):
        import torch

        from reasonrl.model import load_policy_bundle
        from reasonrl.sampler.backends import make_sampler
        from reasonrl.tasks import get_task

        torch.set_num_threads(cfg.run.threads)
        self.cfg, self.run = cfg, run
        self.task = get_task(cfg.data.task, **cfg.data.options)
        self.examples = self.task.examples("train", cfg.data.n_prompts, seed=cfg.run.seed)  # never dev/test
        if not self.examples:
            raise ValueError(f"task '{self.task.name}' gave no train prompts")
        if not all(isinstance(ex.get("prompt"), str) for ex in self.examples):  # before the model loads
            raise ValueError(f"rejection: task '{self.task.name}' has examples without a text prompt "
                             "(conversation prompts are not supported yet)")
        bundle = load_policy_bundle(cfg.model.path, gguf_file=cfg.model.gguf_file)  # a checkpoint holds no model
        self.model_path, self.tokenizer = bundle.path, bundle.tokenizer
        self.prompt = prompt_spec(cfg, bundle)
        self.sampler = make_sampler(cfg.sampling.sampler, bundle.policy.eval(), bundle.tokenizer)
        self.step_check = getattr(self.task, "step_check", None) if cfg.filters.valid_chain else None
        self.total_steps = math.ceil(len(self.examples) / cfg.sampling.batch_prompts)
        self.batches: list[tuple[list[dict], dict]] = []  # per finished step: (rows kept, counts)
        self.scorer = None
        if ckpt is None:
            run.print(f"rejection: {len(self.examples)} prompts x {cfg.sampling.k} samples in {self.total_steps} "
                      f"batches; filters: {', '.join(active_filters(cfg.filters))}")

    def train_step(self, step: int) -> dict[str, Any]:
        from reasonrl.rl.rollout import collect
        from reasonrl.seeding import seed_for

        b, k = self.cfg.sampling.batch_prompts, self.cfg.sampling.k
        examples = self.examples[step * b:(step + 1) * b]
        batch = collect(self.sampler, self.scorer, self.tokenizer, examples, group_size=k, prompt=self.prompt,
                        sampling=self._sampling(), seed=seed_for(self.cfg.run.seed, step, "rejection"),
                        reward_spec=reward_spec(self.cfg.filters))
        groups = [r // k for r in range(len(batch))]  # rollouts are prompt-major
        samples = make_samples(batch.texts, examples, groups, batch.lengths, batch.truncated, batch.components,
                               self.prompt.prefill, self.step_check)
        reasons = rejection_reasons(samples, self.cfg.filters, resolved_max_tokens(self.cfg))
        rows = [dataset_row(examples[sample.group], sample, r % k, self.task.name)
                for r, (sample, reason) in enumerate(zip(samples, reasons)) if reason is None]
        # one append: a Ctrl-C at any moment leaves whole steps only, which is what a checkpoint holds
        self.batches.append((rows, batch_counts(samples, reasons, len(examples))))
        return step_metrics(samples, reasons, batch)

    def _sampling(self) -> dict[str, Any]:
        s = self.cfg.sampling
        return {"max_new_tokens": s.max_new_tokens, "temperature": s.temperature, "top_p": s.top_p,
                "stop_strings": list(self.prompt.stop_strings) or None}

    def evaluate(self) -> dict[str, float]:
        return {}  # nothing trains: there is nothing to hold out

    def save_checkpoint(self, step: int) -> None:
        from reasonrl.train.checkpoint import save_checkpoint_dir

        batches = self.batches[:step]

        def fill(directory: Path) -> None:
            (directory / ROWS_FILE).write_text(jsonl([row for rows, _ in batches for row in rows]), encoding="utf-8")
            (directory / COUNTS_FILE).write_text(json.dumps([counts for _, counts in batches]) + "\n",
                                                 encoding="utf-8")

        save_checkpoint_dir(self.run.path("checkpoints"), step, fill, keep_last=self.cfg.checkpoint.keep_last,
                            run=self.run)

    def restore(self, ckpt: Path) -> int:
        counts = json.loads((ckpt / COUNTS_FILE).read_text(encoding="utf-8"))
        rows = [json.loads(line) for line in (ckpt / ROWS_FILE).read_text(encoding="utf-8").splitlines() if line]
        if len(rows) != sum(c["kept"] for c in counts):
            raise ValueError(f"{ckpt}: {len(rows)} rows but {sum(c['kept'] for c in counts)} counted as kept")
        self.batches = []
        for c in counts:  # the rows of each batch follow each other in order
            self.batches.append((rows[:c["kept"]], c))
            rows = rows[c["kept"]:]
        return len(self.batches)

    def export(self, directory: Path) -> dict[str, str]:
        """dataset.jsonl and acceptance.json in the run directory; no model is written (the
        runner's `directory` is not used): the outputs name the dataset and the sampled model."""
        report = acceptance_report([counts for _, counts in self.batches], self.cfg)
        rows = [row for batch_rows, _ in self.batches for row in batch_rows]
        self.run.write_text(DATASET_FILE, jsonl(rows))
        self.run.write_text(ACCEPTANCE_FILE, json.dumps(report, indent=2) + "\n")  # unsorted: filters in order
        if not rows:
            worst = max(report["rejected"], key=report["rejected"].get)
            self.run.warn(f"rejection: no sample was kept ({report['samples']} sampled; most were rejected by "
                          f"'{worst}'): {self.run.path(DATASET_FILE)} is empty")
        return {"dataset": str(self.run.path(DATASET_FILE)), "model": str(self.model_path)}

    def stop_early(self, metrics: dict[str, Any]) -> bool:
        return False

    @contextlib.contextmanager
    def resources(self):
        from reasonrl.rewards import RewardRuntime

        with RewardRuntime(reward_spec(self.cfg.filters), timeout_s=self.cfg.reward_timeout_s) as runtime:
            self.scorer = runtime
            yield runtime


def prompt_spec(cfg: RejectionConfig, bundle):
    """The sampled model's prompt spec (`data.prompt_format`, auto: its card) with the config's
    system message, prefill and stop strings where set."""
    import dataclasses

    spec = bundle.prompt_spec(cfg.data.prompt_format)
    stops = spec.stop_strings if cfg.sampling.stop_strings is None else tuple(cfg.sampling.stop_strings)
    return dataclasses.replace(spec, system=spec.system if cfg.data.system is None else cfg.data.system,
                               prefill=cfg.data.prefill or spec.prefill, stop_strings=stops)


def dataset_row(example: dict, sample: Sample, index: int, task: str) -> dict[str, Any]:
    """An SFT row: the question unrendered (the student renders it in its own format)."""
    meta = {**(example.get("meta") or {}), "task": task, "source_id": example.get("id"), "sample": index,
            "tokens": sample.tokens}
    return {"id": f"{example.get('id')}/{index}", "prompt": example["prompt"], "response": sample.response,
            "answer": example.get("answer"), "meta": meta}


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
