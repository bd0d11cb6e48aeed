"""`reasonrl compare MODEL [MODEL ...]`: the former side-by-side command, now an alias of
`reasonrl eval` (same flags, same outputs) that also takes its old flags: `--n` (= `--limit`) and
`--out FILE.json`, which puts the eval run in FILE's directory (run name FILE's stem) and writes
the results to FILE with the old `rows` list (name, model, greedy, greedy_ci95, pass@1,
pass@1_ci95) plus a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub) -> argparse.ArgumentParser:
    from reasonrl.stages.evaluate import add_parser as add_eval_parser

    p = add_eval_parser(sub, name="compare", help="alias of `reasonrl eval` (models side by side)")
    p.add_argument("--n", dest="limit", type=int, help="same as --limit")
    p.add_argument("--out", default=None, help="also write the results here as JSON with a Markdown table beside it")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    from reasonrl.config import load_config
    from reasonrl.stages.evaluate import EvalConfig, cli_overrides, main

    path, overrides = cli_overrides(args)
    if args.out:
        out = Path(args.out)
        overrides = [f"run.dir={json.dumps(str(out.parent))}", f"run.name={json.dumps(out.stem)}", *overrides]
    result = main(load_config(EvalConfig, path, overrides))
    if args.out:
        document = json.loads(Path(result.outputs["results"]).read_text())
        document["rows"] = legacy_rows(document)
        out.write_text(json.dumps(document, indent=2) + "\n")
        out.with_suffix(".md").write_text(markdown_table(document["rows"], document["k"]))
    return 0


def legacy_rows(document: dict) -> list[dict]:
    return [{"name": m["name"], "model": m["model"], "greedy": m["greedy"], "greedy_ci95": m["ci95"].get("greedy"),
             "pass@1": m["pass@1"], "pass@1_ci95": m["ci95"]["pass@1"]} for m in document["models"]]


def markdown_table(rows: list[dict], k: int) -> str:
    lines = [f"| model | greedy accuracy | sampled pass@1 (k={k}) |", "|---|---|---|"]
    for r in rows:
        greedy = "-" if r["greedy"] is None else (f"{100 * r['greedy']:.1f}% [{100 * r['greedy_ci95'][0]:.1f}, "
                                                  f"{100 * r['greedy_ci95'][1]:.1f}]")
        lines.append(f"| {r['name']} | {greedy} | {100 * r['pass@1']:.1f}% [{100 * r['pass@1_ci95'][0]:.1f}, "
                     f"{100 * r['pass@1_ci95'][1]:.1f}] |")
    return "\n".join(lines) + "\n"
