"""Verifier objects, the registry of built-in verifiers, and user verifiers from
`module:function`.

A Verifier is a small picklable record (target path + options) rather than a closure, so it can
be shipped to spawn/forkserver worker processes; the function is imported where it runs.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from dataclasses import dataclass, field


class RewardFailure(Exception):
    """A verifier could not reach a verdict. The runtime records `kind` ("timeout" or
    "error") with `reason` and substitutes the configured failure value."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


# name -> (target, runs in the trainer process). In-process verifiers are linear-time string
# scans that cannot hang (docs/rewards.md, "What runs where"); the rest go to the worker pool.
BUILTINS = {
    "math": ("reasonrl.rewards.answers:math_accuracy", False),
    "exact": ("reasonrl.rewards.answers:exact_match", True),
    "numeric": ("reasonrl.rewards.answers:numeric_match", True),
    "choice": ("reasonrl.rewards.answers:choice_match", True),
    "countdown": ("reasonrl.rewards.answers:countdown_match", True),
    "per_example": ("reasonrl.rewards.answers:per_example", True),  # a task mixture's members' own
    "reasoning_gym": ("reasonrl.rewards.answers:reasoning_gym_score", False),
    "format": ("reasonrl.rewards.style:format_reward", True),
    "tag_count": ("reasonrl.rewards.style:tag_count", True),
    "language": ("reasonrl.rewards.style:language_consistency", True),
    "overlong": ("reasonrl.rewards.style:overlong_penalty", True),
    "code": ("reasonrl.rewards.code:code_reward", False),
    "process": ("reasonrl.rewards.process:process_reward", True),
}


@functools.lru_cache(maxsize=256)
def load_function(target: str):
    """Import `package.module:function`."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'module:function', got {target!r}")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is not callable")
    return obj


@dataclass(frozen=True)
class Verifier:
    """`verifier(completion, example) -> float | None`."""

    name: str
    target: str
    options: dict = field(default_factory=dict)
    in_process: bool = False

    def __call__(self, completion: str, example: dict) -> float | None:
        value = load_function(self.target)(completion, example, **self.options)
        return None if value is None else float(value)

    def __hash__(self):
        return hash((self.name, self.target, repr(sorted(self.options.items()))))


def _check_options(name: str, fn, options: dict) -> None:
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(options) - set(list(params)[2:]))
    if unknown:
        raise TypeError(f"verifier {name!r} has no option(s) {unknown}; "
                        f"it takes {list(params)[2:]}")


def get_verifier(name: str, **options) -> Verifier:
    """A built-in verifier by name, or a user verifier `module:function` (run in the worker
    pool, since nothing is known about whether it can hang). Options are checked against the
    function's keyword parameters."""
    if name in BUILTINS:
        target, in_process = BUILTINS[name]
    elif ":" in name:
        target, in_process = name, False
    else:
        raise KeyError(f"unknown verifier {name!r}; known: {sorted(BUILTINS)} or 'module:function'")
    if name == "code" and options.get("check_sandbox", True):
        from reasonrl.rewards.sandbox import require_sandbox

        require_sandbox()
    options.pop("check_sandbox", None)
    _check_options(name, load_function(target), options)
    return Verifier(name=name, target=target, options=dict(options), in_process=in_process)
