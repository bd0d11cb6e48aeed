"""`reasonrl report RUN_DIR [RUN_DIR ...]`: an HTML report over one or more run directories.

One self-contained report.html (plots embedded, no network needed) plus plots/*.png next to it:
a results table comparing the runs, run summaries, the aha-moment verdict, training curves with
the runs overlaid, evaluation tables (eval_results.json), per-prompt solve rates and the best and
worst sampled completions.
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="HTML report with plots over one or more run directories",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (each with a metrics.jsonl)")
    p.add_argument("--out", default=None, help="output directory (default: the first run directory)")
    p.add_argument("--names", default=None, help="comma-separated display names for the runs")
    p.add_argument("--aha-factor", type=float, default=3.0,
                   help="rise of the reflection rate over its early level that counts as an aha moment (default: 3)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    from reasonrl.eval.report import build_report

    names = [n.strip() for n in args.names.split(",")] if args.names else None
    if args.aha_factor <= 1:
        raise ValueError(f"--aha-factor must be above 1, got {args.aha_factor}")
    path = build_report(args.runs, args.out, names, aha_factor=args.aha_factor)
    if not args.quiet:
        print(f"report written to {path}")
    return 0
