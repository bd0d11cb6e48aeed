"""The results of `reasonrl eval`: the `eval_results.json` document, the samples.jsonl rows
and the terminal tables, built from the per-model measurements of reasonrl.stages.evaluate."""

from __future__ import annotations

import math
from typing import Any

DIFF_METRICS = ("pass@1", "cons@k", "greedy")
SEED_METRICS = ("pass@1", "cons@k", "strict_pass@1")


def model_vectors(e) -> dict[str, list[float]]:
    """Per-problem scores averaged over the sampling seeds, plus the greedy verdicts."""
    from reasonrl.eval.evaluate import mean_over

    vectors = mean_over([s["scores"] for s in e.seeds])
    if e.greedy is not None:
        vectors["greedy"] = [row[0] for row in e.greedy["lenient"].correct]
    return vectors


def model_result(e, task, examples: list[dict], cfg, settings: dict) -> dict[str, Any]:
    """One model's object of the results schema (docs/evaluation.md)."""
    from reasonrl.eval.evaluate import breakdown, example_categories, mean_over, process_checks, summary
    from reasonrl.eval.metrics import bootstrap_ci

    vectors = model_vectors(e)
    n_boot = cfg.eval.n_boot
    out: dict[str, Any] = {"name": e.name, "model": e.path, "task": task.name, "n_problems": len(examples),
                           "k": cfg.eval.k, **summary(vectors, n_boot=n_boot)}
    out["greedy"] = None
    if e.greedy is not None:
        out["greedy"] = sum(vectors["greedy"]) / len(examples)
        out["ci95"]["greedy"] = list(bootstrap_ci(vectors["greedy"], n_boot=n_boot))
    strict = summary(mean_over([s["strict_scores"] for s in e.seeds]), n_boot=n_boot)
    strict.pop("mean_length", None)
    if e.greedy is not None:
        strict["greedy"] = sum(row[0] for row in e.greedy["strict"].correct) / len(examples)
    out["strict"] = strict
    out["breakdown"] = breakdown(example_categories(task, examples, cfg.eval.breakdown_keys), vectors)
    flat = [(t, ex, c) for s in e.seeds for ex, texts, row in zip(examples, s["texts"], s["lenient"].correct)
            for t, c in zip(texts, row)]
    out["process"] = process_checks(task, [f[1] for f in flat], [f[0] for f in flat], [f[2] for f in flat])
    out.update(style_rates([f[0] for f in flat], e.settings.get("prefill", "")))
    out["settings"] = {**settings, **e.settings}
    return out


def style_rates(texts: list[str], prefill: str = "") -> dict[str, float]:
    """R1's reflection-word rate and the language-mixing rate of the sampled completions."""
    from reasonrl.eval.analytics import language_mixing_rate, reflection_rate

    return {"reflection_rate": reflection_rate(texts), "lang_mix_rate": language_mixing_rate(texts, prefill=prefill)}


def paired_diffs(evals: list, n_boot: int) -> list[dict[str, Any]]:
    """Each model against the first: mean(model) - mean(first) with a paired bootstrap CI."""
    from reasonrl.eval.metrics import paired_bootstrap_ci

    if len(evals) < 2:
        return []
    base = model_vectors(evals[0])
    rows = []
    for e in evals[1:]:
        mine = model_vectors(e)
        row: dict[str, Any] = {"model": e.name, "against": evals[0].name}
        for metric in (m for m in DIFF_METRICS if m in base and m in mine):
            value = sum(mine[metric]) / len(mine[metric]) - sum(base[metric]) / len(base[metric])
            row[metric] = {"value": value, "ci95": list(paired_bootstrap_ci(base[metric], mine[metric], n_boot=n_boot))}
        rows.append(row)
    return rows


def _std(xs: list[float]) -> float:
    # sample standard deviation over seeds (0 for a single seed)
    if len(xs) < 2:
        return 0.0
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def seed_spread(evals: list, seeds: list[int]) -> dict[str, Any]:
    """Per model and metric: the value of each sampling seed, their mean and std."""
    per_seed: dict[str, dict[str, list[float]]] = {}
    for e in evals:
        values: dict[str, list[float]] = {m: [] for m in SEED_METRICS}
        values[f"pass@{len(e.seeds[0]['texts'][0])}"] = []
        for s in e.seeds:
            n = len(s["scores"]["pass@1"])
            values["pass@1"].append(sum(s["scores"]["pass@1"]) / n)
            values["cons@k"].append(sum(s["scores"]["cons@k"]) / n)
            values["strict_pass@1"].append(sum(s["strict_scores"]["pass@1"]) / n)
            top = max(int(key.split("@")[1]) for key in s["scores"] if key.startswith("pass@"))
            values[f"pass@{top}"].append(sum(s["scores"][f"pass@{top}"]) / n)
        per_seed[e.name] = values
    return {"values": list(seeds), "per_seed": per_seed,
            "mean": {name: {m: sum(v) / len(v) for m, v in vals.items()} for name, vals in per_seed.items()},
            "std": {name: {m: _std(v) for m, v in vals.items()} for name, vals in per_seed.items()}}


def build_document(evals: list, task, examples: list[dict], cfg) -> dict[str, Any]:
    """eval_results.json: the first model's object at the top level, then `models`, `diff`, `seeds`."""
    e = cfg.eval
    settings = {"split": cfg.data.split, "limit": cfg.data.limit, "subset_seed": cfg.data.seed,
                "task_options": dict(cfg.data.options), "k": e.k, "temperature": e.temperature, "top_p": e.top_p,
                "max_new_tokens": e.max_new_tokens, "seeds": list(e.seeds), "greedy": e.greedy,
                "prompt_format_choice": e.prompt_format, "n_boot": e.n_boot}
    models = [model_result(m, task, examples, cfg, settings) for m in evals]
    return {**models[0], "models": models, "diff": paired_diffs(evals, e.n_boot), "seeds": seed_spread(evals, e.seeds)}


def sample_rows(e, examples: list[dict], greedy: bool = False) -> list[dict[str, Any]]:
    """One row per completion: model, problem, sample index, seed, prompt, completion, the answer
    and verdict under lenient and strict extraction, the gold answer and the length in tokens."""
    runs = ([e.greedy] if e.greedy is not None else []) if greedy else e.seeds
    rows = []
    for s in runs:
        for i, ex in enumerate(examples):
            for j, text in enumerate(s["texts"][i]):
                rows.append({"model": e.name, "model_path": e.path, "problem_id": ex.get("id", str(i)),
                             "sample": j, "seed": None if greedy else s["seed"], "prompt": e.prompts[i],
                             "completion": text, "answer": s["lenient"].answers[i][j],
                             "answer_strict": s["strict"].answers[i][j], "verdict": s["lenient"].correct[i][j],
                             "verdict_strict": s["strict"].correct[i][j], "gold": ex.get("answer"),
                             "length": s["lengths"][i][j]})
    return rows


def _pct(value: float | None, ci: list[float] | None = None) -> str:
    if value is None:
        return "-"
    text = f"{100 * value:.1f}%"
    return text + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")


def print_tables(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    k = doc["k"]
    table = Table(title=f"{doc['task']}: {doc['n_problems']} problems, k={k} (95% CI over problems)")
    for col in ("model", "pass@1", f"pass@{k}", f"cons@{k}", "greedy", "strict pass@1", "no answer", "mean len"):
        table.add_column(col)
    for m in doc["models"]:
        table.add_row(m["name"], _pct(m["pass@1"], m["ci95"]["pass@1"]), _pct(m["pass@k"][str(k)]),
                      _pct(m["cons@k"], m["ci95"]["cons@k"]), _pct(m["greedy"], m["ci95"].get("greedy")),
                      _pct(m["strict"]["pass@1"]), _pct(m["format_failure_rate"]), f"{m.get('mean_length', 0):.1f}")
    import sys

    console = Console(width=None if sys.stdout.isatty() else 150)  # a log file keeps one row per model
    console.print(table)
    if doc["diff"]:
        diffs = Table(title=f"difference against {doc['diff'][0]['against']} (paired bootstrap 95% CI)")
        for col in ("model", *DIFF_METRICS):
            diffs.add_column(col)
        for row in doc["diff"]:
            diffs.add_row(row["model"], *[_signed(row.get(m)) for m in DIFF_METRICS])
        console.print(diffs)


def _signed(cell: dict | None) -> str:
    if cell is None:
        return "-"
    lo, hi = cell["ci95"]
    return f"{100 * cell['value']:+.1f} pts [{100 * lo:+.1f}, {100 * hi:+.1f}]"
