"""Tasks: sources of Examples (docs/design.md) plus the name of the verifier that scores them.

`get_task(spec, **options)` with spec `arithmetic`, `countdown`, `rg:<reasoning-gym dataset>`,
a benchmark (`math500`, `aime24`, `amc23`, `gsm8k`) or a path to a `.jsonl` file. Importing this
package is light: reasoning-gym is imported only when an `rg:` task is built.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from . import arithmetic, countdown, files, rg
from .base import DataError, Task
from .countdown import countdown_score
from .files import load_benchmark, verify_checksum
from .templates import corpus_text, final_answer, r1_completion, r1_short_prompt, r1_zero_prompt, render_solution

BUILDERS = {
    "arithmetic": arithmetic.build,
    "countdown": countdown.build,
    **{name: partial(files.build_benchmark, name) for name in files.BENCHMARK_FILES},
}

__all__ = ["BUILDERS", "DataError", "Task", "corpus_text", "countdown_score", "final_answer", "get_task",
           "load_benchmark", "r1_completion", "r1_short_prompt", "r1_zero_prompt", "render_solution", "verify_checksum"]


def get_task(spec: str, **options: Any) -> Task:
    """Build the task named by `spec`; unknown specs and options fail with one clear message."""
    if spec in BUILDERS:
        return BUILDERS[spec](**options)
    if spec.startswith("rg:"):
        return rg.build(spec[3:], **options)
    if spec.endswith(".jsonl"):
        return files.build_jsonl(spec, **options)
    known = ", ".join(BUILDERS)
    raise ValueError(f"unknown task '{spec}': expected one of {known}, rg:<reasoning-gym dataset> "
                     "or a path to a .jsonl file")
