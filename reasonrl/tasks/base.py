"""The Task object, option checking and the hash split shared by the generated tasks."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any, Callable

# Generated tasks decide a problem's split from a hash of its canonical text, so the same
# problem lands in the same split whatever the seed, size or options of the call.
TEST_PERCENT = 10

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
    """'test' for about TEST_PERCENT % of canonical problem keys, 'train' for the rest."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return "test" if int.from_bytes(digest[:8], "big") % 100 < TEST_PERCENT else "train"


def make_rng(task: str, split: str, seed: int) -> random.Random:
    # String seeds are hashed by `random` itself (sha512), so this is stable across runs.
    return random.Random(f"{task}|{split}|{seed}")


def sample_unique(task: str, split: str, n: int, draw: Callable[[], tuple[str, dict] | None],
                  max_misses: int = 20000) -> list[dict]:
    """Draw examples until `n` distinct problems of `split` are found.

    `draw` returns (canonical key, example) or None for a rejected draw. Fails clearly when the
    problem space runs dry instead of looping forever.
    """
    out: list[dict] = []
    seen: set[str] = set()
    misses = 0
    while len(out) < n:
        item = draw()
        if item is None or item[0] in seen or split_of(item[0]) != split:
            misses += 1
            if misses > max_misses:
                raise ValueError(
                    f"task '{task}': found only {len(out)} distinct '{split}' problems of the {n} "
                    "asked for; ask for fewer or widen the task's options"
                )
            continue
        misses = 0
        seen.add(item[0])
        out.append(item[1])
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
