"""`reasonrl compare MODEL [MODEL ...]`: held-out answer accuracy of several models side by side.

Greedy accuracy plus sampled pass@1 over k samples (temperature 0.6, top-p 0.95 as in R1's
evaluation), on the same held-out examples, with 95% confidence intervals over problems.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reasonrl.tasks.prompts import PROMPT_FORMAT_CHOICES


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("compare", help="held-out accuracy of models side by side (greedy and sampled)",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("models", nargs="+", help="model directories (native checkpoints or transformers models)")
    p.add_argument("--task", default="arithmetic", help="task name (default: arithmetic)")
    p.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE",
                   help="task option, repeatable (e.g. digits=2)")
    p.add_argument("--n", type=int, default=200, help="held-out test examples (default: 200)")
    p.add_argument("--k", type=int, default=4, help="samples per example for sampled pass@1 (default: 4)")
    p.add_argument("--temperature", type=float, default=0.6, help="sampling temperature (default: 0.6)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling (default: 0.95)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="generation budget (default: 64)")
    p.add_argument("--prompt-format", default="auto", choices=PROMPT_FORMAT_CHOICES,
                   help="prompt format (default: auto = the one recorded with each model, see docs/tasks.md)")
    p.add_argument("--names", default=None, help="comma-separated display names for the models")
    p.add_argument("--seed", type=int, default=0, help="seed for the examples and sampling")
    p.add_argument("--out", default=None, help="write the results as JSON here (and a Markdown table beside it)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    import yaml

    from reasonrl.tasks import get_task

    options = {}
    for item in args.task_option:
        key, _, value = item.partition("=")
        options[key] = yaml.safe_load(value)
    task = get_task(args.task, **options)
    examples = task.examples("test", args.n, seed=args.seed)
    names = args.names.split(",") if args.names else [Path(m).name for m in args.models]
    if len(names) != len(args.models):
        raise ValueError(f"--names has {len(names)} names for {len(args.models)} models")
    rows = [dict(name=name, model=path, **_score(path, task, examples, args)) for name, path in zip(names, args.models)]
    _print_table(rows, task.name, len(examples), args)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"task": task.name, "n_problems": len(examples), "k": args.k, "rows": rows}, indent=2))
        out.with_suffix(".md").write_text(markdown_table(rows, args.k))
    return 0


def _score(path: str, task, examples: list[dict], args) -> dict:
    from reasonrl.eval.accuracy import answer_accuracy
    from reasonrl.eval.metrics import ci95
    from reasonrl.model import load_policy_bundle

    bundle = load_policy_bundle(path)
    policy, tokenizer = bundle.policy, bundle.tokenizer
    spec = bundle.prompt_spec(args.prompt_format)  # auto: the format (and prefill) the model was trained with
    prompt_fn = lambda ex: spec.render(ex, tokenizer)  # noqa: E731
    from reasonrl.runlog import Run

    common = dict(verifier=task.verifier, prompt_fn=prompt_fn, max_new_tokens=args.max_new_tokens, seed=args.seed,
                  stop_strings=spec.stop_strings)
    with Run(None, quiet=args.quiet).progress(2 * len(examples), f"compare {Path(path).name}") as bar:
        greedy = answer_accuracy(policy, tokenizer, examples, on_batch=bar.advance, **common)
        sampled = answer_accuracy(policy, tokenizer, examples, k=args.k, temperature=args.temperature,
                                  top_p=args.top_p, on_batch=bar.advance, **common)
    per_problem = [sum(c) / len(c) for c in sampled.correct]
    return {"greedy": greedy.accuracy, "greedy_ci95": list(ci95([c[0] for c in greedy.correct])),
            "pass@1": sampled.accuracy, "pass@1_ci95": list(ci95(per_problem))}


def markdown_table(rows: list[dict], k: int) -> str:
    lines = [f"| model | greedy accuracy | sampled pass@1 (k={k}) |", "|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {100 * r['greedy']:.1f}% [{100 * r['greedy_ci95'][0]:.1f}, "
                     f"{100 * r['greedy_ci95'][1]:.1f}] | {100 * r['pass@1']:.1f}% [{100 * r['pass@1_ci95'][0]:.1f}, "
                     f"{100 * r['pass@1_ci95'][1]:.1f}] |")
    return "\n".join(lines) + "\n"


def _print_table(rows: list[dict], task: str, n: int, args) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"held-out {task}: {n} problems (95% CI over problems)")
    for col in ("model", "greedy accuracy", f"sampled pass@1 (k={args.k}, T={args.temperature})"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], f"{100 * r['greedy']:.1f}%  [{100 * r['greedy_ci95'][0]:.1f}, {100 * r['greedy_ci95'][1]:.1f}]",
                      f"{100 * r['pass@1']:.1f}%  [{100 * r['pass@1_ci95'][0]:.1f}, {100 * r['pass@1_ci95'][1]:.1f}]")
    Console().print(table)
