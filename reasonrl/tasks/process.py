"""Process checks: is the chain of thought right, not only the answer?

A task's `step_check(completion, example) -> bool | None` says True when every checkable step
is right, False when one is false and None when nothing is checkable. Here: the rates the
stages log, and the names by which the `process` reward finds a step check from an example's
`meta["step_check"]` (examples travel to reward workers as plain dicts, without their Task).
"""

from __future__ import annotations

import importlib
from typing import Callable, Sequence

StepCheck = Callable[[str, dict], "bool | None"]

# meta["step_check"] name -> "module:function"; any other "module:function" is imported as is.
STEP_CHECKS = {"arithmetic": "reasonrl.tasks.arithmetic_steps:check_steps"}


def resolve_step_check(name: str) -> StepCheck:
    """The step check registered as `name`, or the function `module:function`."""
    target = STEP_CHECKS.get(name, name)
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise KeyError(f"unknown step check {name!r}; known: {sorted(STEP_CHECKS)} or 'module:function'")
    check = getattr(importlib.import_module(module_name), attr)
    if not callable(check):
        raise TypeError(f"step check {target} is not callable")
    return check


def process_stats(completions: Sequence[str], examples: Sequence[dict], correct: Sequence[bool] | None,
                  step_check: StepCheck) -> dict[str, float | None]:
    """`cot_valid_rate`: the fraction of checkable completions whose chain is valid;
    `right_answer_wrong_reasoning`: the fraction of the correct answers (among the checkable
    completions) whose chain has a false step. Each is None, not 0, when it has no denominator:
    nothing checkable, or no checkable correct answer (or `correct` is None)."""
    verdicts = [step_check(text, example) for text, example in zip(completions, examples, strict=True)]
    flags = [False] * len(verdicts) if correct is None else list(correct)
    checked = [(valid, right) for valid, right in zip(verdicts, flags, strict=True) if valid is not None]
    valid_rate = sum(valid for valid, _ in checked) / len(checked) if checked else None
    right_answers = [valid for valid, right in checked if right]
    wrong_reasoning = sum(not valid for valid in right_answers) / len(right_answers) if right_answers else None
    return {"cot_valid_rate": valid_rate, "right_answer_wrong_reasoning": wrong_reasoning}


def process_metrics(prefix: str, completions: Sequence[str], examples: Sequence[dict],
                    correct: Sequence[bool] | None, step_check: StepCheck | None) -> dict[str, float]:
    """`process_stats` as metric keys `<prefix>/<name>`; a rate with nothing to measure is left out
    (metrics.jsonl holds numbers), and so is everything when the task has no step check."""
    if step_check is None:
        return {}
    stats = process_stats(completions, examples, correct, step_check)
    return {f"{prefix}/{name}": value for name, value in stats.items() if value is not None}
