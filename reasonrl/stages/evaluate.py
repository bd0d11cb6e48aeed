"""`reasonrl eval MODEL [MODEL ...]`: benchmark evaluation the DeepSeek-R1 way.

k samples per problem (temperature 0.6, top-p 0.95), pass@1 as their mean correctness, unbiased
pass@k, cons@k (majority vote), one greedy sample, lenient and strict answer extraction, 95%
bootstrap confidence intervals over problems, paired bootstrap differences against the first
model, per-seed spread with --seeds, and breakdowns by the data's categories. Writes
`eval_results.json`, `samples.jsonl` and `greedy.jsonl` to the run directory (docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonrl.config import opt, section
from reasonrl.stages.common import RunSection, StageResult
from reasonrl.tasks.prompts import PROMPT_FORMAT_CHOICES, PromptFormatChoice

RESULTS_FILE, SAMPLES_FILE, GREEDY_FILE = "eval_results.json", "samples.jsonl", "greedy.jsonl"


@dataclass
class EvalRun(RunSection):
    name: str = opt("eval", "run name: results go to <dir>/<name>/")


@dataclass
class EvalData:
    task: str = opt("math500", "task: math500, aime24, amc23, gsm8k, gpqa_example, code_example, rg:<name>, "
                    "a .jsonl file or module:function (docs/tasks.md)")
    options: dict[str, Any] = opt(factory=dict, help="task options")
    split: str = opt("test", "split to evaluate on")
    limit: int | None = opt(None, "evaluate a seeded random subset of this many problems (null: all)", ge=1)
    seed: int = opt(0, "seed of the `limit` subset (and of generated tasks)")


@dataclass
class EvalSection:
    k: int = opt(8, "samples per problem and sampling seed (pass@1 is their mean correctness)", ge=1)
    temperature: float = opt(0.6, "sampling temperature (R1: 0.6)", ge=0)
    top_p: float = opt(0.95, "nucleus sampling mass (R1: 0.95)", gt=0, le=1)
    max_new_tokens: int = opt(512, "generation budget per completion", ge=1)
    seeds: list[int] = opt(factory=lambda: [0], help="sampling seeds: the whole sampled evaluation runs once per "
                           "seed; metrics average over seeds, `seeds` in the results gives each and the spread")
    greedy: bool = opt(True, "also score one greedy completion per problem")
    batch_size: int = opt(16, "prompts per generation batch", ge=1)
    prompt_format: PromptFormatChoice = opt("auto", "prompt format (auto: the one each model's card records; "
                                            "r1_math: R1's \\boxed{} math prompt, see docs/tasks.md)")
    strict_extract: str | None = opt(None, "extractor of strict mode (null: the slot the prompt format asks for: "
                                     "boxed for r1_math, answer_tag otherwise)")
    n_boot: int = opt(1000, "bootstrap resamples for the 95% confidence intervals", ge=1)
    breakdown_keys: list[str] | None = opt(None, "meta keys to break results down by (null: detected, e.g. "
                                           "MATH-500 subject and level)")
    timeout_s: float = opt(10.0, "wall-clock limit per verifier call", gt=0)


@dataclass
class EvalConfig:
    run: EvalRun = section(EvalRun, "run directory (results), threads, quiet")
    models: list[str] = opt(factory=list, help="model directories (native checkpoints or transformers models); "
                            "the first is the baseline of the paired differences")
    names: list[str] = opt(factory=list, help="display names, one per model (default: directory names)")
    gguf_file: str | None = opt(None, "GGUF file name inside every model directory")
    data: EvalData = section(EvalData, "problems")
    eval: EvalSection = section(EvalSection, "sampling, extraction and statistics")


# flag -> dotted key; flags are shorthands for overrides, so YAML configs and overrides work alike
FLAGS = {"task": "data.task", "split": "data.split", "limit": "data.limit", "k": "eval.k",
         "temperature": "eval.temperature", "top_p": "eval.top_p", "max_new_tokens": "eval.max_new_tokens",
         "prompt_format": "eval.prompt_format", "seeds": "eval.seeds", "names": "names"}


def add_parser(sub, name: str = "eval", help: str = "benchmark evaluation: pass@1 over k samples, pass@k, "
               "cons@k, greedy, CIs, paired differences") -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.__class__ = IntermixedParser  # model paths and overrides may come before or after the flags
    p.add_argument("items", nargs="*", metavar="MODEL|CONFIG.yaml|key=value",
                   help="model directories, optionally one YAML config and dotted overrides (e.g. eval.n_boot=200)")
    p.add_argument("--task", help="task (default: math500), e.g. gsm8k, gpqa_example, rg:basic_arithmetic, file.jsonl")
    p.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE", help="task option, repeatable")
    p.add_argument("--split", help="split (default: test)")
    p.add_argument("--limit", type=int, help="a seeded subset of N problems (default: all)")
    p.add_argument("--k", type=int, help="samples per problem (default: 8)")
    p.add_argument("--temperature", type=float, help="sampling temperature (default: 0.6)")
    p.add_argument("--top-p", type=float, help="nucleus sampling (default: 0.95)")
    p.add_argument("--max-new-tokens", type=int, help="generation budget (default: 512)")
    p.add_argument("--seeds", help="comma-separated sampling seeds, e.g. 0,1,2 (default: 0)")
    p.add_argument("--names", help="comma-separated display names for the models")
    p.add_argument("--prompt-format", choices=PROMPT_FORMAT_CHOICES, help="prompt format (default: auto)")
    p.set_defaults(handler=run)
    return p


class IntermixedParser(argparse.ArgumentParser):
    """Positionals may follow options (`eval MODEL --k 4 run.name=x`), which plain argparse
    rejects once its `nargs="*"` positional has matched: parse the subcommand intermixed."""

    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:  # parse_known_intermixed_args calls back in here for its two passes
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def cli_overrides(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """(config path, dotted overrides) from the command line; JSON values are valid YAML, so
    paths and task names reach the config exactly as typed."""
    path, models, overrides = None, [], []
    for item in args.items:
        if "=" in item:
            overrides.append(item)
        elif item.endswith((".yaml", ".yml")) and path is None:
            path = item  # a missing file fails as "config file not found"
        else:
            models.append(item)
    if models:
        overrides.append(f"models={json.dumps(models)}")
    for flag, key in FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if flag == "seeds":
            value = [int(s) for s in str(value).split(",") if s.strip()]
        elif flag == "names":
            value = [s.strip() for s in str(value).split(",")]
        overrides.append(f"{key}={json.dumps(value)}")
    for item in args.task_option:
        option, _, value = item.partition("=")
        overrides.append(f"data.options.{option}={value}")
    if getattr(args, "quiet", False):
        overrides.append("run.quiet=true")
    return path, overrides


def run(args: argparse.Namespace) -> int:
    from reasonrl.config import load_config

    path, overrides = cli_overrides(args)
    main(load_config(EvalConfig, path, overrides))
    return 0


def main(cfg: EvalConfig) -> StageResult:
    """Check everything (task, problems, model paths), evaluate every model, then write: bad
    input fails before anything is loaded or written."""
    from reasonrl.config import dump_yaml
    from reasonrl.rewards import RewardRuntime
    from reasonrl.runlog import Run
    from reasonrl.stages.eval_results import build_document, print_tables, sample_rows
    from reasonrl.stages.runner import already_complete, mark_complete
    from reasonrl.tasks import get_task

    names = check_models(cfg)
    task = get_task(cfg.data.task, **cfg.data.options)
    examples = task.examples(cfg.data.split, cfg.data.limit, seed=cfg.data.seed)
    if not examples:
        raise ValueError(f"task '{task.name}' has no problems in split '{cfg.data.split}'")
    import torch  # after the checks: bad input fails fast

    torch.set_num_threads(cfg.run.threads)
    run = Run(cfg.run.path, quiet=cfg.run.quiet, stage="eval")
    done = already_complete("eval", cfg, run)
    if done is not None:
        return done
    with RewardRuntime(timeout_s=cfg.eval.timeout_s) as runtime:
        evals = [evaluate_model(name, path, task, examples, cfg, runtime, run) for name, path in zip(names, cfg.models)]
    document = build_document(evals, task, examples, cfg)
    run.write_text(SAMPLES_FILE, "".join(json.dumps(r) + "\n" for e in evals for r in sample_rows(e, examples)))
    run.write_text(GREEDY_FILE, "".join(json.dumps(r) + "\n" for e in evals for r in sample_rows(e, examples, True)))
    run.write_json(RESULTS_FILE, document)
    run.write_text("config.yaml", "# resolved config of `reasonrl eval`; re-run with: reasonrl eval <this file>\n"
                   + dump_yaml(cfg))
    run.write_environment()
    if not cfg.run.quiet:
        print_tables(document)
    run.print(f"eval: results in {run.path(RESULTS_FILE)}")
    outputs = {"results": str(run.path(RESULTS_FILE)), "samples": str(run.path(SAMPLES_FILE))}
    result = StageResult(outputs, {k: document[k] for k in ("pass@1", "cons@k", "n_problems")})
    mark_complete(run, "eval", result)
    return result


def check_models(cfg: EvalConfig) -> list[str]:
    """Display names, after checking that every model path is a loadable model directory."""
    from reasonrl.model.loading import resolve_model_source

    if not cfg.models:
        raise ValueError("eval needs at least one model: reasonrl eval MODEL [MODEL ...]")
    if not cfg.eval.seeds:
        raise ValueError("eval.seeds is empty: give at least one sampling seed")
    if len(set(cfg.eval.seeds)) != len(cfg.eval.seeds):
        raise ValueError(f"eval.seeds repeats a seed ({cfg.eval.seeds}): a repeat would count the same samples twice")
    for path in cfg.models:
        resolve_model_source(path, cfg.gguf_file)
    names = list(cfg.names) or [Path(m).name or m for m in cfg.models]
    if len(names) != len(cfg.models):
        raise ValueError(f"{len(names)} names for {len(cfg.models)} models (--names a,b,...)")
    # the same directory twice is a valid sanity check (its paired difference is exactly 0)
    return [n if names.count(n) == 1 else f"{n}#{i + 1}" for i, n in enumerate(names)]


@dataclass
class ModelEval:
    """Everything measured for one model: settings, per-seed samples and scores, greedy."""

    name: str
    path: str
    settings: dict[str, Any]
    seeds: list[dict[str, Any]]  # per seed: texts, lengths, lenient, strict (Scored), scores, strict_scores
    greedy: dict[str, Any] | None  # texts, lengths, lenient, strict, or None without greedy
    prompts: list[str]


def evaluate_model(name: str, path: str, task, examples: list[dict], cfg: EvalConfig, runtime, run) -> ModelEval:
    from reasonrl.eval.evaluate import generate_completions, problem_scores, score_completions, strict_slot
    from reasonrl.model import load_policy_bundle

    bundle = load_policy_bundle(path, gguf_file=cfg.gguf_file)
    spec = bundle.prompt_spec(cfg.eval.prompt_format)  # auto: the format (and prefill) the model was trained with
    strict = cfg.eval.strict_extract or strict_slot(spec.prompt_format)
    prompts = [spec.render(ex, bundle.tokenizer) for ex in examples]
    e = cfg.eval
    common = dict(max_new_tokens=e.max_new_tokens, batch_size=e.batch_size, stop_strings=spec.stop_strings)

    def sample(k: int, temperature: float, seed: int, bar) -> dict[str, Any]:
        texts, lengths = generate_completions(bundle.policy, bundle.tokenizer, prompts, k=k, temperature=temperature,
                                              top_p=e.top_p if temperature > 0 else 1.0, seed=seed,
                                              on_batch=bar.advance, **common)
        lenient = score_completions(runtime, task, examples, texts)
        strict_scored = score_completions(runtime, task, examples, texts, extract_order=strict)
        return {"seed": seed, "texts": texts, "lengths": lengths, "lenient": lenient, "strict": strict_scored,
                "scores": problem_scores(lenient, lengths), "strict_scores": problem_scores(strict_scored, lengths)}

    total = len(examples) * (len(e.seeds) + int(e.greedy))
    with run.progress(total, f"eval {name}") as bar:
        greedy = sample(1, 0.0, 0, bar) if e.greedy else None
        seeds = [sample(e.k, e.temperature, seed, bar) for seed in e.seeds]
    settings = {"prompt_format": spec.prompt_format, "prefill": spec.prefill, "stop_strings": list(spec.stop_strings),
                "strict_extract": strict}
    return ModelEval(name, path, settings, seeds, greedy, prompts)
