"""Markdown tables of the demo over RL seeds: `python scripts/demo_seeds_table.py [RUNS]` reads
<RUNS>/r1-tiny/ (seed 0) and <RUNS>/r1-tiny-seed<S>/ (scripts/demo_seeds.sh) and prints, per
model, pass@1 / cons@8 / greedy on the test split for each seed with their mean and spread, and
each model's paired difference against the base (95% paired bootstrap CI) for each seed, and the
distilled student against the RL student."""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path


def seed_runs(runs: Path) -> dict[int, Path]:
    found = {0: runs / "r1-tiny"} if (runs / "r1-tiny" / "summary.json").is_file() else {}
    for path in sorted(runs.glob("r1-tiny-seed*")):
        match = re.fullmatch(r"r1-tiny-seed(\d+)", path.name)
        if match and (path / "summary.json").is_file():
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def metric_table(results: dict[int, dict], key: str) -> list[str]:
    seeds = list(results)
    models = [m["name"] for m in next(iter(results.values()))["models"]]
    lines = [f"| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | sd |",
             "|---|" + "---|" * (len(seeds) + 2)]
    for name in models:
        values = [next(m for m in results[s]["models"] if m["name"] == name)[key] for s in seeds]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        lines.append(f"| {name} | " + " | ".join(pct(v) for v in values)
                     + f" | {pct(statistics.mean(values))} | {pct(sd)} |")
    return lines


def diff_table(results: dict[int, dict], key: str) -> list[str]:
    seeds = list(results)
    first = next(iter(results.values()))
    lines = [f"| {key} minus base | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|" + "---|" * len(seeds)]
    for d in first["diff"]:
        cells = []
        for s in seeds:
            row = next(x for x in results[s]["diff"] if x["model"] == d["model"])[key]
            low, high = row["ci95"]
            cells.append(f"{100 * row['value']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]")
        lines.append(f"| {d['model']} | " + " | ".join(cells) + " |")
    return lines


def per_problem_pass1(samples: Path, model: str) -> dict[str, float]:
    """problem id -> mean verdict of `model`'s sampled completions (its pass@1 on that problem)."""
    scores: dict[str, list[float]] = {}
    with samples.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["model"] == model:
                scores.setdefault(row["problem_id"], []).append(float(row["verdict"]))
    return {pid: sum(v) / len(v) for pid, v in scores.items()}


def pair_table(found: dict[int, Path], first: str, second: str) -> list[str]:
    """`second` minus `first`, pass@1 with a paired bootstrap CI over the same problems, per seed."""
    from reasonrl.eval.metrics import paired_bootstrap_ci

    lines = [f"| pass@1, {second} minus {first} | " + " | ".join(f"seed {s}" for s in found) + " |",
             "|---|" + "---|" * len(found)]
    cells = []
    for path in found.values():
        samples = path / "stages" / "eval" / "samples.jsonl"
        a, b = per_problem_pass1(samples, first), per_problem_pass1(samples, second)
        ids = sorted(a)
        low, high = paired_bootstrap_ci([a[i] for i in ids], [b[i] for i in ids])
        value = sum(b[i] - a[i] for i in ids) / len(ids)
        cells.append(f"{100 * value:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]")
    return lines + ["| | " + " | ".join(cells) + " |"]


def main(argv: list[str]) -> int:
    runs = Path(argv[1] if len(argv) > 1 else "runs")
    found = seed_runs(runs)
    if not found:
        print(f"demo_seeds_table: no r1-tiny run with a summary.json under {runs}", file=sys.stderr)
        return 1
    results = {s: json.loads((p / "stages" / "eval" / "eval_results.json").read_text()) for s, p in found.items()}
    for key in ("pass@1", "cons@k", "greedy"):
        print(f"\n{key} (%, test split)\n")
        print("\n".join(metric_table(results, key)))
    for key in ("pass@1", "greedy"):
        print("\n" + "\n".join(diff_table(results, key)))
    print("\n" + "\n".join(pair_table(found, "student_rl", "student_distilled")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
