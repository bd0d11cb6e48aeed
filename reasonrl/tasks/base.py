"""The Task object, option checking and the hash split shared by the generated tasks."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any, Callable

# Generated tasks decide a problem's split from a hash of its canonical key, so the same
# problem (and its trivial variants: operand order) lands in the same split whatever the seed,
# size or options of the call. Percent of keys per split, in hash-bucket order. dev and test
# together are the 10 % that were `test` before dev existed, so the train pool keeps its size
# (the default pretraining corpus needs 7000 of the 8100 2-digit additions).
SPLIT_PERCENT = (("test", 5), ("dev", 5), ("train", 90))
GENERATED_SPLITS = ("train", "dev", "test")

# The in-loop evaluation set of pretrain and rl is drawn with this seed, never the run's seed:
# runs with different seeds are then compared on the same problems.
IN_LOOP_EVAL_SEED = 0

# Size of a generated split when `n` is not given.
DEFAULT_SIZE = 1000


class DataError(ValueError):
    """A data file is malformed; the message reads `file:line: what is wrong`."""


@dataclass(frozen=True)
class Task:
    """A source of Examples (see docs/tasks.md) plus the name of the verifier that scores them."""

    name: str
    verifier: str
    splits: tuple[str, ...]
    make: Callable[[str, int | None, int], list[dict]]
    options: dict[str, Any]
    # A problem's categories (e.g. {"op": "+", "carry": "units"}); the eval stage breaks its
    # numbers down by these plus the categories examples carry in `meta` (subject, level).
    categories: Callable[[dict], dict[str, str]] | None = None
    # (completion, example) -> True when every checkable step of the chain of thought is right,
    # False when one is wrong, None when nothing in it is checkable (docs/tasks.md, step checks).
    step_check: Callable[[str, dict], bool | None] | None = None

    def examples(self, split: str = "train", n: int | None = None, seed: int = 0) -> list[dict]:
        """`n` examples of `split`, deterministic from `seed` (n=None: see docs/tasks.md)."""
        if split not in self.splits:
            if self.splits == ("test",):
                raise ValueError(
                    f"task '{self.name}' is evaluation-only: it has no '{split}' split "
                    "(use split='test'; never train on a benchmark)"
                )
            raise ValueError(f"task '{self.name}' has no split '{split}' (splits: {', '.join(self.splits)})")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise ValueError(f"task '{self.name}': n must be a non-negative integer or None, got {n!r}")
        examples = self.make(split, n, seed)
        for example in examples:  # the `accuracy` reward reads the task's checker from here
            example.setdefault("meta", {}).setdefault("verifier", self.verifier)
        return examples


def check_options(task: str, options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with `options`; an unknown option fails naming it and the known ones."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        known = ", ".join(sorted(defaults)) or "none"
        raise ValueError(f"unknown option '{unknown[0]}' for task '{task}' (known options: {known})")
    return {**defaults, **options}


def check_int(task: str, name: str, value: Any, low: int, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"task '{task}': option '{name}' must be an integer {bound}, got {value!r}")
    return value


def split_of(key: str) -> str:
    """'test', 'dev' or 'train' for a canonical problem key, in the shares of SPLIT_PERCENT."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    for split, percent in SPLIT_PERCENT:
        if bucket < percent:
            return split
        bucket -= percent
    raise AssertionError("SPLIT_PERCENT must add up to 100")


def in_loop_split(task: Task) -> str:
    """The split the in-loop evaluation uses: 'dev', or 'test' for a task without one."""
    return "dev" if "dev" in task.splits else "test"


def in_loop_eval_examples(task: Task, n: int) -> list[dict]:
    """The in-loop evaluation set: `n` examples of `in_loop_split(task)`, the same for every run seed."""
    return task.examples(in_loop_split(task), n, seed=IN_LOOP_EVAL_SEED)


def make_rng(task: str, split: str, seed: int) -> random.Random:
    # String seeds are hashed by `random` itself (sha512), so this is stable across runs.
    return random.Random(f"{task}|{split}|{seed}")


def sample_unique(task: str, split: str, n: int, draw: Callable[[], tuple[str, str, dict] | None],
                  max_misses: int = 20000) -> list[dict]:
    """Draw examples until `n` distinct problems of `split` are found.

    `draw` returns (split key, identity, item) or None for a rejected draw: the split key is
    the canonical key (shared by trivial variants such as 38+47 and 47+38), the identity tells
    distinct problems apart. Fails clearly when the problem space runs dry instead of looping
    forever.
    """
    out: list[dict] = []
    seen: set[str] = set()
    misses = 0
    while len(out) < n:
        item = draw()
        if item is None or item[1] in seen or split_of(item[0]) != split:
            misses += 1
            if misses > max_misses:
                raise ValueError(
                    f"task '{task}': found only {len(out)} distinct '{split}' problems of the {n} "
                    "asked for; ask for fewer or widen the task's options"
                )
            continue
        misses = 0
        seen.add(item[1])
        out.append(item[2])
    return out


def take(task: str, items: list[dict], n: int | None, seed: int) -> list[dict]:
    """All `items` in file order (n=None) or a seeded random sample of `n` of them."""
    if n is None:
        return list(items)
    if n > len(items):
        raise ValueError(f"task '{task}': asked for {n} examples but it has only {len(items)}")
    return random.Random(f"{task}|take|{seed}").sample(items, n)


def canonical_number(value: Any) -> str:
    """'27' for 27.0 or '27.0', '25' for '025', '-1' for -1.0; other text is returned stripped."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return text
