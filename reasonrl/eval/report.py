"""`reasonrl report`: one self-contained HTML page (plus plots/*.png) over one or more run
directories: a results table comparing the runs, each run's summary, the aha verdict, the
training curves overlaid, evaluation tables with confidence intervals, per-prompt solve rates
and the best and worst sampled completions.

This module reads the run directories and assembles the page; `report_plots` draws, `report_html`
writes the markup.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from reasonrl.eval import analytics as an


@dataclass
class RunData:
    name: str
    dir: Path
    metrics: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    eval_results: dict | None = None


def _jsonl(path: Path) -> list[dict]:
    """Well-formed JSON object lines of a log (a torn last line after a crash is skipped)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def load_run(path: str | Path, name: str | None = None) -> RunData:
    """A run directory's logs; ValueError (one line) when it is not a run directory: neither training
    logs nor evaluation results (an evaluation-only directory has just the latter)."""
    import yaml

    d = Path(path)
    if not (d / "metrics.jsonl").is_file() and not (d / "eval_results.json").is_file():
        raise ValueError(f"{d} is not a run directory (no metrics.jsonl or eval_results.json)")
    try:
        cfg_file = d / "config.yaml"
        config = yaml.safe_load(cfg_file.read_text(encoding="utf-8")) if cfg_file.is_file() else {}
    except yaml.YAMLError:
        config = {}
    results = _json(d / "eval_results.json")
    return RunData(name or d.resolve().name, d, _jsonl(d / "metrics.jsonl"), _jsonl(d / "samples.jsonl"),
                   config if isinstance(config, dict) else {}, _json(d / "environment.json") or {},
                   results if isinstance(results, dict) else None)


# ------------------------------------------------------------------------------------------------
# what the page says about each run


def _get(tree: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def stage_of(run: RunData) -> str:
    stages = [r.get("stage") for r in run.metrics if r.get("stage")]
    return str(stages[-1]) if stages else ("eval" if run.eval_results else "?")


def highlights(run: RunData) -> dict[str, Any]:
    """Config and environment highlights for the run summary (keys absent from the files are left out)."""
    c, env = run.config, run.environment
    out = {"stage": stage_of(run), "algorithm": _get(c, "rl.algorithm"),
           "advantage": _get(c, "rl.advantage"), "model": _get(c, "model.path") or _get(c, "model.preset"),
           "task": _get(c, "data.task"), "steps": _get(c, "rl.steps") or _get(c, "budget.steps"),
           "group size": _get(c, "rl.group_size"), "beta (KL)": _get(c, "rl.beta"), "lr": _get(c, "optim.lr"),
           "seed": _get(c, "run.seed"), "reasonrl": env.get("reasonrl"),
           "git commit": (env.get("git_commit") or "")[:12],
           "torch": env.get("torch"), "python": env.get("python"), "started": env.get("time")}
    return {k: v for k, v in out.items() if v not in (None, "")}


def last(rows: Sequence[dict], key: str) -> float | None:
    _, values = an.series(rows, key)
    return values[-1] if values else None


def results_row(run: RunData) -> dict[str, Any]:
    """One row of the table comparing runs (None where the run did not log the key)."""
    steps, _ = an.series(run.metrics, "step")
    _, lengths = an.series(run.metrics, "length/mean")
    _, times = an.series(run.metrics, "step_time_s")
    return {"run": run.name, "stage": stage_of(run), "algorithm": _get(run.config, "rl.algorithm"),
            "steps": int(max(steps)) if steps else None, "final reward": last(run.metrics, "reward/mean"),
            "final train accuracy": last(run.metrics, "accuracy"),
            "final dev accuracy": last(run.metrics, "eval/accuracy"),
            "final KL": last(run.metrics, "kl"), "mean length": sum(lengths) / len(lengths) if lengths else None,
            "final loss": last(run.metrics, "loss"), "wall time (s)": sum(times) if times else None}


def sample_extremes(run: RunData, n: int = 2) -> tuple[float | None, list[dict], list[dict]]:
    """The best and worst ``n`` sampled completions by reward at the last sampled step."""
    rows = an.training_samples(run.samples)
    if not rows:
        return None, [], []
    step = max(float(r["step"]) for r in rows)
    distinct: dict[str, dict] = {}  # a group often repeats one completion: show each text once
    for r in rows:
        if float(r["step"]) == step:
            distinct.setdefault(r["completion"], r)
    at = sorted(distinct.values(), key=lambda r: -(an.as_number(r.get("reward")) or 0.0))
    best = at[:n]
    worst = [r for r in at[::-1][:n] if r not in best]
    return step, best, worst


def solve_rate_movers(history: dict[str, list[tuple[float, float]]], n: int = 10) -> list[tuple[str, list]]:
    """The prompts whose solve rate moved most between first and last sampling (then the most sampled)."""
    ranked = sorted(history.items(), key=lambda kv: (-abs(kv[1][-1][1] - kv[1][0][1]), -len(kv[1]), kv[0]))
    return ranked[:n]


# ------------------------------------------------------------------------------------------------
# building the page


def build_report(run_dirs: Sequence[str | Path], out: str | Path | None = None, names: Sequence[str] | None = None,
                 aha_factor: float = 3.0) -> Path:
    """Write ``report.html`` and ``plots/*.png`` into ``out`` (default: the first run directory)."""
    from reasonrl.eval import report_html, report_plots

    if names is not None and len(names) != len(run_dirs):
        raise ValueError(f"--names has {len(names)} names for {len(run_dirs)} run directories")
    runs = [load_run(d, names[i] if names else None) for i, d in enumerate(run_dirs)]
    _dedupe_names(runs)
    out_dir = Path(out) if out is not None else Path(run_dirs[0])
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    images = []
    for plot in report_plots.build_plots(runs):
        png = report_plots.render_png(plot, [r.name for r in runs])
        (out_dir / "plots" / f"{plot.name}.png").write_bytes(png)
        images.append((plot, "data:image/png;base64," + base64.b64encode(png).decode("ascii")))
    ahas = {r.name: an.detect_aha(r.metrics, factor=aha_factor) for r in runs}
    page = report_html.page(runs, images, ahas)
    target = out_dir / "report.html"
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)  # a reader never sees half a page
    return target


def _dedupe_names(runs: list[RunData]) -> None:
    # two runs called "model" (runs/a/model, runs/b/model) would share a colour and a legend entry
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.name] = seen.get(run.name, 0) + 1
        if seen[run.name] > 1:
            run.name = f"{run.name}-{seen[run.name]}"
