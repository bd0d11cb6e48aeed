"""Tasks: sources of Examples (docs/design.md) plus the name of the verifier that scores them.

`get_task(spec, **options)` with spec `arithmetic`, `countdown`, `rg:<reasoning-gym dataset>`,
a benchmark (`math500`, `aime24`, `amc23`, `gsm8k`) or a path to a `.jsonl` file. Importing this
package is light: reasoning-gym is imported only when an `rg:` task is built.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from . import arithmetic, countdown, files, rg
from .base import IN_LOOP_EVAL_SEED, SPLIT_PERCENT, DataError, Task, in_loop_eval_examples, in_loop_split
from .countdown import countdown_score
from .files import load_benchmark, verify_checksum
from .process import process_stats, resolve_step_check
from .templates import corpus_text, final_answer, r1_completion, r1_short_prompt, r1_zero_prompt, render_solution

BUILDERS = {
    "arithmetic": arithmetic.build,
    "countdown": countdown.build,
    **{name: partial(files.build_benchmark, name) for name in files.BENCHMARK_FILES},
}

__all__ = ["BUILDERS", "IN_LOOP_EVAL_SEED", "SPLIT_PERCENT", "DataError", "Task", "corpus_text", "countdown_score",
           "final_answer", "get_task", "in_loop_eval_examples", "in_loop_split", "load_benchmark", "process_stats",
           "r1_completion", "r1_short_prompt", "r1_zero_prompt", "render_solution", "resolve_step_check",
           "verify_checksum"]


def get_task(spec: str, **options: Any) -> Task:
    """Build the task named by `spec`; unknown specs and options fail with one clear message."""
    if spec in BUILDERS:
        return BUILDERS[spec](**options)
    if spec.startswith("rg:"):
        return rg.build(spec[3:], **options)
    if spec.endswith(".jsonl"):
        return files.build_jsonl(spec, **options)
    if ":" in spec:
        return _user_task(spec, **options)
    known = ", ".join(BUILDERS)
    raise ValueError(f"unknown task '{spec}': expected one of {known}, rg:<reasoning-gym dataset>, "
                     "a path to a .jsonl file or module:function")


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
