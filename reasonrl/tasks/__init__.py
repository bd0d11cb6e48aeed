"""Tasks: sources of Examples (docs/design.md) plus the name of the verifier that scores them.

`get_task(spec, **options)` with spec `arithmetic`, `countdown`, `rg:<reasoning-gym dataset>`,
a benchmark (`math500`, `aime24`, `amc23`, `gsm8k`), an example file (`gpqa_example`,
`code_example`), a mixture `mix` of those (tasks/mixture.py) or a path to a `.jsonl` file (GPQA-layout rows become multiple-choice tasks, rows
with stdin/stdout `tests` and no `answer` code tasks, anything else a user task). Importing this
package is light: reasoning-gym is imported only when an `rg:` task is built.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from . import arithmetic, choice, codeproblems, countdown, files, mixture, rg
from .base import IN_LOOP_EVAL_SEED, SPLIT_PERCENT, DataError, Task, in_loop_eval_examples, in_loop_split
from .countdown import countdown_score
from .files import load_benchmark, verify_checksum
from .process import process_stats, resolve_step_check
from .templates import (corpus_text, final_answer, mixed_completions, plain_completion, r1_completion, r1_short_prompt,
                        r1_zero_prompt, render_solution)

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "data" / "examples"
BUILDERS = {
    "arithmetic": arithmetic.build,
    "countdown": countdown.build,
    **{name: partial(files.build_benchmark, name) for name in files.BENCHMARK_FILES},
    "gpqa_example": partial(choice.build, str(EXAMPLES_DIR / "gpqa_style.jsonl"), "gpqa_example"),
    "code_example": partial(codeproblems.build, str(EXAMPLES_DIR / "code_stdin.jsonl"), "code_example"),
}

__all__ = ["BUILDERS", "IN_LOOP_EVAL_SEED", "SPLIT_PERCENT", "DataError", "Task", "corpus_text", "countdown_score",
           "final_answer", "get_task", "in_loop_eval_examples", "in_loop_split", "load_benchmark", "mixed_completions",
           "plain_completion", "process_stats", "r1_completion", "r1_short_prompt", "r1_zero_prompt", "render_solution", "resolve_step_check",
           "verify_checksum"]


def get_task(spec: str, **options: Any) -> Task:
    """Build the task named by `spec`; unknown specs and options fail with one clear message."""
    if spec == "mix":
        return mixture.build(**options, get_task=get_task)
    if spec in BUILDERS:
        return BUILDERS[spec](**options)
    if spec.startswith("rg:"):
        return rg.build(spec[3:], **options)
    if spec.endswith(".jsonl"):
        return _jsonl_task(spec, **options)
    if ":" in spec:
        return _user_task(spec, **options)
    known = ", ".join(BUILDERS)
    raise ValueError(f"unknown task '{spec}': expected one of {known}, mix, rg:<reasoning-gym dataset>, "
                     "a path to a .jsonl file or module:function")


def _jsonl_task(path: str, **options: Any) -> Task:
    """A .jsonl file by the layout of its first row: GPQA (choice), stdin/stdout tests (code), or
    prompt + answer (files.build_jsonl, which reports a missing file or a bad row)."""
    first = _first_row(path)
    if first is not None and choice.is_choice_row(first):
        return choice.build(path, **options)
    if first is not None and codeproblems.is_code_row(first):
        return codeproblems.build(path, **options)
    return files.build_jsonl(path, **options)


def _first_row(path: str) -> dict | None:
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            line = next((line for line in handle if line.strip()), None)
        row = json.loads(line) if line else None
    except (OSError, ValueError):
        return None  # the file's own loader gives the precise error
    return row if isinstance(row, dict) else None


def _user_task(spec: str, **options: Any) -> Task:
    """`package.module:function`: the function takes the options and returns a Task."""
    import importlib

    module_name, _, attr = spec.partition(":")
    try:
        builder = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"task '{spec}': cannot load {attr!r} from module {module_name!r} ({exc})") from None
    task = builder(**options)
    if not isinstance(task, Task):
        raise ValueError(f"task '{spec}': {attr}() returned {type(task).__name__}, expected reasonrl.tasks.Task")
    return task
