"""The report's evaluation tables, from a run's ``eval_results.json`` (written by the evaluation
stage): one row per model with 95% confidence intervals, breakdowns by category, paired diffs.

The file's shape: top-level keys for the first model (``task``, ``n_problems``, ``k``, ``pass@1``,
``pass@k`` keyed by str(k), ``cons@k``, ``ci95`` metric -> [low, high], ``breakdown`` category ->
value -> {pass@1, n}, ``model``, ``settings``), ``models`` (one such object per model, each with
``name``, ``greedy``, ``mean_length``, ``format_failure_rate``, ``strict``, ``process``), ``diff``
(list of {model, against, metric -> {value, ci95}}) and ``seeds``. Keys may be missing.
"""

from __future__ import annotations

from typing import Any, Sequence

from reasonrl.eval.report_html import esc, fmt, table


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def with_ci(value: Any, ci: Any, pct: bool = True) -> tuple[str, str]:
    """'45.0% [30.0, 60.0]' (a right-aligned cell); the interval only when it is a pair of numbers."""
    if not _is_number(value):
        return ("num", fmt(value))
    text = fmt(float(value), pct)
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(map(_is_number, ci)):
        lo, hi = (100 * c for c in ci) if pct else ci
        text += f" [{lo:.1f}, {hi:.1f}]" if pct else f" [{lo:.4g}, {hi:.4g}]"
    return ("num", text)


def _models(results: dict) -> list[dict]:
    models = results.get("models")
    return [m for m in models if isinstance(m, dict)] if isinstance(models, list) and models else [results]


def _model_name(m: dict, i: int) -> str:
    return str(m.get("name") or m.get("model") or f"model {i + 1}")


def _cell(value: Any) -> Any:
    """Rates (numbers in [0, 1]) as percentages; nested objects flattened to 'key: value'."""
    if _is_number(value):
        return ("num", fmt(float(value), pct=0 <= value <= 1))
    if isinstance(value, dict):
        return "; ".join(f"{k}: {fmt(float(v), 0 <= v <= 1) if _is_number(v) else fmt(v)}" for k, v in value.items())
    return value


def models_table(results: dict) -> str:
    models = _models(results)
    ks = sorted({str(k) for m in models for k in (m.get("pass@k") or {})}, key=lambda k: (len(k), k))
    headers = ["model", "greedy", "pass@1 [95% CI]", *[f"pass@{k}" for k in ks], "cons@k [95% CI]",
               "mean length", "format failures", "strict", "process"]
    rows = []
    for i, m in enumerate(models):
        ci = m.get("ci95") or {}
        pass_k = m.get("pass@k") or {}
        rows.append([_model_name(m, i), with_ci(m.get("greedy"), ci.get("greedy")),
                     with_ci(m.get("pass@1"), ci.get("pass@1")),
                     *[with_ci(pass_k.get(k), ci.get(f"pass@{k}")) for k in ks],
                     with_ci(m.get("cons@k"), ci.get("cons@k")),
                     with_ci(m.get("mean_length"), None, pct=False), _cell(m.get("format_failure_rate")),
                     _cell(m.get("strict")), _cell(m.get("process"))])
    keep = [j for j, h in enumerate(headers) if j == 0 or any(r[j] not in (None, ("num", "-")) for r in rows)]
    return table([headers[j] for j in keep], [[r[j] for j in keep] for r in rows], "eval")


def breakdown_tables(results: dict) -> str:
    """One table per category: its values down, each model's pass@1 (n) across."""
    models = _models(results)
    categories: dict[str, None] = {}
    for m in models:
        categories.update(dict.fromkeys(m.get("breakdown") or {}))
    parts = []
    for cat in categories:
        values = list(dict.fromkeys(v for m in models for v in ((m.get("breakdown") or {}).get(cat) or {})))
        rows = []
        for value in values:
            row: list[Any] = [value]
            for m in models:
                cell = ((m.get("breakdown") or {}).get(cat) or {}).get(value) or {}
                p, n = cell.get("pass@1"), cell.get("n")
                row.append(("num", f"{fmt(float(p), True)} (n={n})" if _is_number(p) else "-"))
            rows.append(row)
        headers = [cat] + [f"{_model_name(m, i)} pass@1" for i, m in enumerate(models)]
        parts.append(f"<h4>by {esc(cat)}</h4>" + table(headers, rows, "breakdown"))
    return "".join(parts)


def diff_table(results: dict) -> str:
    """Paired differences with their 95% intervals; '*' marks an interval that excludes 0."""
    diffs = [d for d in (results.get("diff") or []) if isinstance(d, dict)]
    metrics = list(dict.fromkeys(k for d in diffs for k, v in d.items() if isinstance(v, dict)))
    if not diffs or not metrics:
        return ""
    rows = [[d.get("model"), d.get("against"), *[_diff_cell(d.get(k)) for k in metrics]] for d in diffs]
    return ("<h4>paired differences</h4>" + table(["model", "against", *metrics], rows, "diff")
            + "<p class='note'>Percentage points, 95% paired interval over problems; * the interval excludes 0.</p>")


def _diff_cell(entry: Any) -> tuple[str, str]:
    if not isinstance(entry, dict) or not _is_number(entry.get("value")):
        return ("num", "-")
    value, ci = float(entry["value"]), entry.get("ci95")
    text = f"{100 * value:+.1f}"
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(map(_is_number, ci)):
        text += f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" + (" *" if ci[0] > 0 or ci[1] < 0 else "")
    return ("num", text)


def _settings(results: dict) -> str:
    items: Sequence[tuple[str, Any]] = [("task", results.get("task")), ("problems", results.get("n_problems")),
                                        ("k", results.get("k")), ("seeds", results.get("seeds"))]
    settings = results.get("settings")
    if isinstance(settings, dict):
        items = [*items, *settings.items()]
    kv = "".join(f"<dt>{esc(k)}</dt><dd>{esc(fmt(v))}</dd>" for k, v in items if v is not None)
    return f"<dl class='kv'>{kv}</dl>"


def eval_section(name: str, results: dict) -> str:
    return (f"<h3>{esc(name)}: {esc(results.get('task') or 'evaluation')}</h3>" + _settings(results)
            + models_table(results) + breakdown_tables(results) + diff_table(results))
