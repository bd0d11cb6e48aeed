"""The report's markup: one HTML page with inline CSS and the plots as data URIs, so it opens
anywhere without a network or a server. Everything taken from a run is escaped.

The only script sets ``data-loaded`` on each image once the page has loaded (so a headless
browser can tell the images decoded); the page reads the same without it.
"""

from __future__ import annotations

import html
import time
from typing import Any, Sequence

from reasonrl.eval import analytics as an
from reasonrl.eval import report as rp

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:0;background:#f6f7f9}
main{max-width:1240px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px;border-bottom:1px solid #dde1e7;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}.meta,.note{color:#5b6473;font-size:12.5px}
nav a{margin-right:14px;color:#2458b3;text-decoration:none}
table{border-collapse:collapse;margin:6px 0 14px;font-size:13px}
th,td{border:1px solid #dde1e7;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:18px}
figure{margin:0;border:1px solid #e4e7ec;border-radius:6px;padding:8px}figure.wide{grid-column:1/-1}
figure img{width:100%;height:auto;display:block}figcaption{font-size:12px;color:#5b6473;margin-top:4px}
.verdict{padding:8px 12px;border-radius:6px;margin:6px 0;border-left:4px solid #8a94a6;background:#f3f5f8}
.verdict.aha{border-color:#2e8b57;background:#eef8f1}.verdict.vacuous,.verdict.reflection_without_accuracy{border-color:#c98a14;background:#fdf6e7}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;border:1px solid #e4e7ec;border-radius:4px;padding:8px;
font-size:12px;max-height:320px;overflow:auto;margin:4px 0 12px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:4px 0 10px}dl.kv dt{color:#5b6473}dl.kv dd{margin:0}
"""
LOADED_SCRIPT = ("window.addEventListener('load',function(){document.querySelectorAll('img').forEach(function(i){"
                 "i.setAttribute('data-loaded',i.complete&&i.naturalWidth>0?'1':'0')})});")
SAMPLE_CHARS = 2000


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, pct: bool = False) -> str:
    """A cell's text: percentages for rates, 4 significant digits for other floats, '-' for none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{100 * value:.1f}%" if pct else f"{value:.4g}"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {fmt(v, pct)}" for k, v in value.items())
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    """An HTML table; numeric cells (and cells given as ('num', text)) align right."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if cell is None:
                cells.append('<td class="num">-</td>')
            elif isinstance(cell, tuple) and cell[:1] == ("num",):
                cells.append(f'<td class="num">{esc(cell[1])}</td>')
            elif isinstance(cell, (int, float)) and not isinstance(cell, bool):
                cells.append(f'<td class="num">{esc(fmt(cell))}</td>')
            else:
                cells.append(f"<td>{esc(fmt(cell))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _num(text: str) -> tuple[str, str]:
    return ("num", text)


# ------------------------------------------------------------------------------------------------
# sections


def results_section(runs: Sequence[rp.RunData]) -> str:
    rows = [rp.results_row(r) for r in runs]
    cols = [c for c in rows[0] if c == "run" or any(r[c] is not None for r in rows)]
    pct = {"final train accuracy", "final dev accuracy"}
    cells = [[_num(fmt(r[c], pct=True)) if c in pct and r[c] is not None else r[c] for c in cols] for r in rows]
    return "<h2 id='results'>Results</h2>" + table(cols, cells, "results")


def summary_section(runs: Sequence[rp.RunData]) -> str:
    """Config and environment highlights, one column per run, so runs compare at a glance."""
    facts = [rp.highlights(r) for r in runs]
    keys = list(dict.fromkeys(k for f in facts for k in f))
    rows = [[k, *[fmt(f.get(k)) for f in facts]] for k in keys]
    dirs = "".join(f"<li><b>{esc(r.name)}</b>: <code>{esc(r.dir)}</code></li>" for r in runs)
    return ("<h2 id='runs'>Runs</h2>" + table(["", *[r.name for r in runs]], rows, "summary")
            + f"<ul class='meta'>{dirs}</ul>")


def aha_section(ahas: dict[str, an.AhaResult]) -> str:
    parts = ["<h2 id='aha'>Aha moment</h2>",
             "<p class='note'>First step where the reflection rate reaches the set factor times its early level "
             "(mean of the first 10% of steps, floored) while accuracy is above its early level, holding for two "
             "logged steps in a row (docs/evaluation.md).</p>"]
    for name, res in ahas.items():
        parts.append(f"<div class='verdict {esc(res.status)}' data-status='{esc(res.status)}'>"
                     f"<b>{esc(name)}</b>: {esc(res.verdict)}</div>")
    return "".join(parts)


def plots_section(images: Sequence[tuple[Any, str]]) -> str:
    if not images:
        return "<h2 id='plots'>Training curves</h2><p>No curves: the runs logged no plottable metrics.</p>"
    figs = []
    for plot, uri in images:
        wide = " class='wide'" if plot.stacked and len({l.run for l in plot.lines}) > 1 else ""
        note = f" {esc(plot.note)}" if plot.note else ""
        figs.append(f"<figure{wide}><img src='{uri}' alt='{esc(plot.title)}' data-plot='{esc(plot.name)}'>"
                    f"<figcaption><b>{esc(plot.title)}</b> <span>(plots/{esc(plot.name)}.png)</span>{note}"
                    "</figcaption></figure>")
    return "<h2 id='plots'>Training curves</h2><div class='grid'>" + "".join(figs) + "</div>"


def prompts_section(runs: Sequence[rp.RunData]) -> str:
    parts = []
    for run in runs:
        history = an.solve_rate_history(run.samples)
        if not history:
            continue
        summary = an.solve_rate_summary(history)
        parts.append(f"<h3>{esc(run.name)}</h3>" + table(list(summary), [list(summary.values())], "solve-summary"))
        rows = [[pid, len(pts), _num(fmt(pts[0][1], True)), _num(fmt(pts[-1][1], True)),
                 " → ".join(f"{r:.2f}@{s:g}" for s, r in pts)] for pid, pts in rp.solve_rate_movers(history)]
        parts.append(table(["prompt id", "times sampled", "first", "last", "history (rate@step)"], rows, "solve-rates"))
    if not parts:
        return ""
    return ("<h2 id='prompts'>Per-prompt solve rates</h2><p class='note'>Each time a prompt's group was sampled "
            "to samples.jsonl: the fraction of its completions that were correct.</p>" + "".join(parts))


def _sample_block(row: dict, kind: str) -> str:
    text = row.get("completion") or ""
    more = f"\n… ({len(text) - SAMPLE_CHARS} more characters)" if len(text) > SAMPLE_CHARS else ""
    rewards = "; ".join(f"{k}: {fmt(v)}" for k, v in (row.get("rewards") or {}).items())
    return (f"<p class='sample {kind}'><b>{kind}</b>: id {esc(row.get('id'))}, reward {esc(fmt(row.get('reward')))}"
            f" ({esc(rewards) or 'no components'}), gold answer <code>{esc(row.get('answer'))}</code></p>"
            f"<pre>{esc(text[:SAMPLE_CHARS] + more)}</pre>")


def samples_section(runs: Sequence[rp.RunData]) -> str:
    parts = []
    for run in runs:
        step, best, worst = rp.sample_extremes(run)
        if step is None:
            continue
        parts.append(f"<h3>{esc(run.name)} <span class='meta'>(step {step:g})</span></h3>")
        parts += [_sample_block(r, "best") for r in best] + [_sample_block(r, "worst") for r in worst]
    return "<h2 id='samples'>Sample completions</h2>" + "".join(parts) if parts else ""


def page(runs: Sequence[rp.RunData], images: Sequence[tuple[Any, str]], ahas: dict[str, an.AhaResult]) -> str:
    from reasonrl.eval.report_tables import eval_section

    names = ", ".join(r.name for r in runs)
    evals = "".join(eval_section(r.name, r.eval_results) for r in runs if r.eval_results)
    body = [f"<h1>reasonrl report</h1><p class='meta'>runs: {esc(names)} · written "
            f"{esc(time.strftime('%Y-%m-%d %H:%M'))}</p>",
            "<nav><a href='#results'>Results</a><a href='#runs'>Runs</a><a href='#aha'>Aha moment</a>"
            "<a href='#plots'>Curves</a><a href='#eval'>Evaluation</a><a href='#prompts'>Prompts</a>"
            "<a href='#samples'>Samples</a></nav>",
            results_section(runs), summary_section(runs), aha_section(ahas), plots_section(images),
            ("<h2 id='eval'>Evaluation</h2>" + evals) if evals else "", prompts_section(runs), samples_section(runs)]
    return ("<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>reasonrl report: {esc(names)}"
            f"</title><style>{CSS}</style></head><body><main>{''.join(body)}</main>"
            f"<script>{LOADED_SCRIPT}</script></body></html>\n")
