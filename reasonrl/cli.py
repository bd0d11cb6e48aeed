"""`reasonrl <command>`: the command-line entry point.

Stage commands share one shape: `reasonrl STAGE [CONFIG.yaml] [key.sub=value ...]`.
User errors (bad config, bad data, wrong paths) print one line and exit 2; `--debug` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

import reasonrl
from reasonrl.errors import StageError
from reasonrl.stages import STAGE_KINDS

# stage name -> (module, config class, one-line description, outputs); modules import torch lazily
STAGES = STAGE_KINDS

# extra commands with their own argument parsers: module exposing add_parser(sub) and run(args)
# (a stage module listed here builds its own parser: `eval` takes model paths before its config)
COMMANDS: tuple[str, ...] = ("reasonrl.pipeline", "reasonrl.stages.sample", "reasonrl.stages.evaluate",
                             "reasonrl.stages.compare", "reasonrl.stages.report")

# Bad input (config, data, paths, option values) surfaces as these; they print as one line.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, TypeError, OSError, ImportError)


def stage_config_class(stage: str) -> type:
    kind = STAGES[stage]
    return getattr(importlib.import_module(kind.module), kind.config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reasonrl", description="Train reasoning language models the DeepSeek-R1 way.")
    parser.add_argument("--version", action="version", version=f"reasonrl {reasonrl.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, _, text, _) in STAGES.items():
        if module in COMMANDS:
            continue
        p = sub.add_parser(name, help=text, description=f"{text}. Keys: `reasonrl config show {name}`.")
        p.add_argument("config", nargs="?", help="YAML config file (optional)")
        p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=1e-4 run.name=exp1")
        p.add_argument("--allow-config-change", action="store_true",
                       help="resume a run directory whose recorded config differs (the changed keys are listed)")
        _add_common_flags(p)
        p.set_defaults(handler=_run_stage, stage=name)
    _add_config_parser(sub)
    for module in COMMANDS:
        p = importlib.import_module(module).add_parser(sub)
        _add_common_flags(p)
    return parser


def _add_common_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _add_config_parser(sub: Any) -> None:
    p = sub.add_parser("config", help="inspect stage configs", description="Inspect stage configs.")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = csub.add_parser("show", help="print every key of a stage config with type, default and help")
    show.add_argument("stage", choices=sorted(STAGES), help="stage name")
    show.add_argument("--yaml", action="store_true", help="print the defaults as a YAML config file instead")
    md = csub.add_parser("markdown", help="print the Markdown config reference (docs/config.md)")
    for q in (show, md):
        _add_common_flags(q)
    show.set_defaults(handler=_config_show)
    md.set_defaults(handler=_config_markdown)


def _split_config_and_overrides(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    items = ([args.config] if args.config else []) + list(args.overrides)
    path = items[0] if items and "=" not in items[0] else None
    return path, [i for i in items if i is not path]


def _run_stage(args: argparse.Namespace) -> int:
    from reasonrl.config import load_config

    path, overrides = _split_config_and_overrides(args)
    if args.quiet:
        overrides.append("run.quiet=true")
    if args.allow_config_change:
        overrides.append("run.allow_config_change=true")
    cfg = load_config(stage_config_class(args.stage), path, overrides)
    module = importlib.import_module(STAGES[args.stage].module)
    module.main(cfg)
    return 0


def _config_show(args: argparse.Namespace) -> int:
    from reasonrl.config import describe, dump_yaml

    cls = stage_config_class(args.stage)
    if args.yaml:
        print(dump_yaml(cls()), end="")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"reasonrl {args.stage}: config keys", show_lines=False)
    for col in ("key", "type", "default", "help"):
        table.add_column(col, overflow="fold")
    from rich.markup import escape

    for row in describe(cls):  # escaped: "[tensorboard]" in a help text is not rich markup
        table.add_row(escape(row.key), escape(row.type), escape(repr(row.default)), escape(row.help))
    Console(width=160).print(table)
    return 0


def _config_markdown(args: argparse.Namespace) -> int:
    from reasonrl.config import markdown_reference

    print(markdown_reference({name: stage_config_class(name) for name in STAGES}), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except StageError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"reasonrl: {exc}", file=sys.stderr)
        return 1
    except USER_ERRORS as exc:
        if getattr(args, "debug", False):
            raise
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"reasonrl: error: {message.splitlines()[0] if message else type(exc).__name__} "
              "(--debug shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
