"""Synthetic multi-step arithmetic with compact column-by-column solutions.

47+38 is solved as `7+8=15 write 5 carry 1, 4+3+1=8 write 8` with answer `85`. With
`corpus_error_rate` > 0, that fraction of *training* solutions that involve a carry (or borrow)
forgets one of them and reaches the wrong answer that mistake implies: the corpus then teaches
an imperfect model, which leaves RL something to fix. The gold `answer` is always correct.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from .arithmetic_steps import check_steps, column_name
from .base import DEFAULT_SIZE, GENERATED_SPLITS, Task, check_int, check_options, make_rng, sample_unique, split_of

DEFAULTS: dict[str, Any] = {"digits": 2, "terms": 2, "ops": "+", "corpus_error_rate": 0.0}
OP_SETS = {"+": "+", "-": "-", "+-": "+-", "-+": "+-", "*": "*"}
# Problem spaces up to this size are enumerated (exact sampling without replacement).
ENUMERATE_LIMIT = 200_000


class _Slips:
    """Counts carry/borrow events and forgets the one numbered `forget` (None: forget none).

    Also records the columns (0 = units) a carry or borrow leaves, for the problem's categories.
    """

    def __init__(self, forget: int | None = None):
        self.forget = forget
        self.count = 0
        self.columns: set[int] = set()

    def keep(self, column: int) -> bool:
        self.count += 1
        self.columns.add(column)
        return self.count - 1 != self.forget


def _digit(n: int, col: int) -> int | None:
    return n // 10**col % 10 if col < len(str(n)) else None


def _add_columns(nums: list[int], slips: _Slips) -> tuple[str, int]:
    width = max(len(str(n)) for n in nums)
    carry, value, parts = 0, 0, []
    for col in range(width):
        column = [d for d in (_digit(n, col) for n in nums) if d is not None] + ([carry] if carry else [])
        total = sum(column)
        carry = total // 10
        if carry and not slips.keep(col):
            carry = 0
        fact = f"{'+'.join(map(str, column))}={total} " if len(column) > 1 else ""
        parts.append(f"{fact}write {total % 10}" + (f" carry {carry}" if carry else ""))
        value += total % 10 * 10**col
    if carry:
        parts.append(f"write {carry}")
        value += carry * 10**width
    return ", ".join(parts), value


def _sub_columns(a: int, b: int, slips: _Slips) -> tuple[str, int]:
    if a < b:
        raise ValueError("negative intermediate result")
    borrow, value, parts = 0, 0, []
    for col in range(len(str(a))):
        top, bottom = _digit(a, col), _digit(b, col)
        column = [bottom] if bottom is not None else []
        column += [borrow] if borrow else []
        diff = top - sum(column)
        borrow = 1 if diff < 0 else 0
        top, diff = (top + 10, diff + 10) if borrow else (top, diff)
        if borrow and not slips.keep(col):
            borrow = 0  # borrowed here but not paid back in the next column
        fact = f"{'-'.join(map(str, [top] + column))}={diff} " if column else ""
        parts.append(f"{fact}write {diff}" + (f" borrow {borrow}" if borrow else ""))
        value += diff * 10**col
    return ", ".join(parts), value


def _mul_digit(a: int, d: int, slips: _Slips) -> tuple[str, int]:
    if a < 10:
        return f"{a}*{d}={a * d}", a * d
    carry, value, parts = 0, 0, []
    width = len(str(a))
    for col in range(width):
        total = _digit(a, col) * d + carry
        fact = f"{_digit(a, col)}*{d}" + (f"+{carry}" if carry else "")
        carry = total // 10
        if carry and not slips.keep(col):
            carry = 0
        parts.append(f"{fact}={total} write {total % 10}" + (f" carry {carry}" if carry else ""))
        value += total % 10 * 10**col
    if carry:
        parts.append(f"write {carry}")
        value += carry * 10**width
    return ", ".join(parts), value


STEP_FNS = {"+": lambda a, b, s: _add_columns([a, b], s), "-": _sub_columns, "*": _mul_digit}


def solve(operands: list[int], ops: str, slips: _Slips | None = None) -> tuple[str, int]:
    """Step text and final value of operands[0] ops[0] operands[1] ..., left to right.

    Pure additions are done in one column pass over all operands; otherwise each binary step is
    shown as `85-19: <columns> = 66` joined by `; ` (no prefix when there is a single step).
    """
    slips = slips or _Slips()
    if set(ops) == {"+"}:
        return _add_columns(operands, slips)
    value, steps = operands[0], []
    for op, x in zip(ops, operands[1:]):
        text, new = STEP_FNS[op](value, x, slips)
        whole = len(ops) == 1 or text.startswith(f"{value}{op}{x}=")  # a table fact needs no header
        steps.append(text if whole else f"{value}{op}{x}: {text} = {new}")
        value = new
    return "; ".join(steps), value


def _expression(operands: list[int], ops: str) -> str:
    return str(operands[0]) + "".join(op + str(x) for op, x in zip(ops, operands[1:]))


def _example(operands: list[int], ops: str, rng: random.Random, error_rate: float) -> dict:
    events = _Slips()  # forgets nothing; counts the carries a slip could hit
    solution, value = solve(operands, ops, events)
    final, corrupted = value, False
    if events.count and error_rate > 0 and rng.random() < error_rate:
        try:
            solution, final = solve(operands, ops, _Slips(rng.randrange(events.count)))
            corrupted = True
        except ValueError:  # the slip drove a later subtraction negative: keep the clean solution
            pass
    expr = _expression(operands, ops)
    return {
        "id": f"arithmetic-{expr}",
        "prompt": f"What is {expr}?",
        "answer": str(value),
        "solution": solution,
        "meta": {"source": "arithmetic", "operands": list(operands), "ops": ops,
                 "has_carry": events.count > 0, "corrupted": corrupted, "solution_answer": str(final),
                 "step_check": "arithmetic"},  # the `process` reward finds check_steps by this name
    }


def problem_key(operands: list[int] | tuple[int, ...], ops: str) -> str:
    """The split key, the same for every reordering that is trivially the same problem.

    Products: the multiset of factors. Sums and differences: the multiset of added terms (the
    first operand and every `+x`) and the multiset of subtracted ones, so 47+38 and 38+47 share
    a key, as do 85-19-3 and 85-3-19, and 47+38-19 and 38+47-19.
    """
    if set(ops) == {"*"}:
        return "*:" + ",".join(map(str, sorted(operands)))
    added = [operands[0]] + [x for op, x in zip(ops, operands[1:]) if op == "+"]
    taken = [x for op, x in zip(ops, operands[1:]) if op == "-"]
    return f"+{','.join(map(str, sorted(added)))}-{','.join(map(str, sorted(taken)))}"


def categories(example: dict) -> dict[str, str]:
    """`op`: the operators used ("+", "-", "+-", "*"); `carry`: the columns a carry or borrow
    leaves in the correct solution, units first, joined by "+" ("none", "units", "tens",
    "units+tens", "units+hundreds", ..., "10^4" past the thousands)."""
    meta = example["meta"]
    events = _Slips()
    solve(list(meta["operands"]), meta["ops"], events)
    carry = "+".join(column_name(c) for c in sorted(events.columns)) or "none"
    return {"op": "".join(sorted(set(meta["ops"]))), "carry": carry}


def _valid(operands: tuple[int, ...], ops: str) -> bool:
    value = operands[0]
    for op, x in zip(ops, operands[1:]):
        value = value + x if op == "+" else value - x if op == "-" else value * x
        if value < 0:
            return False
    return True


def _options(options: dict[str, Any]) -> dict[str, Any]:
    opts = check_options("arithmetic", options, DEFAULTS)
    check_int("arithmetic", "digits", opts["digits"], 1, 12)
    check_int("arithmetic", "terms", opts["terms"], 2, 12)
    if opts["ops"] not in OP_SETS:
        raise ValueError(f"task 'arithmetic': option 'ops' must be one of {', '.join(OP_SETS)}, got {opts['ops']!r}")
    opts["ops"] = OP_SETS[opts["ops"]]
    if opts["ops"] == "*" and opts["digits"] != 1:
        raise ValueError("task 'arithmetic': ops='*' needs digits=1 (products of 1-digit factors)")
    rate = opts["corpus_error_rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"task 'arithmetic': option 'corpus_error_rate' must be in [0, 1], got {rate!r}")
    return opts


def _operand_range(digits: int) -> range:
    return range(0 if digits == 1 else 10 ** (digits - 1), 10**digits)


def _enumerate(opts: dict[str, Any], split: str) -> list[tuple[tuple[int, ...], str]]:
    numbers = _operand_range(opts["digits"])
    problems = []
    for ops in itertools.product(opts["ops"], repeat=opts["terms"] - 1):
        for operands in itertools.product(numbers, repeat=opts["terms"]):
            if _valid(operands, "".join(ops)) and split_of(problem_key(operands, "".join(ops))) == split:
                problems.append((operands, "".join(ops)))
    return problems


def _space_size(opts: dict[str, Any]) -> int:
    return len(_operand_range(opts["digits"])) ** opts["terms"] * len(opts["ops"]) ** (opts["terms"] - 1)


def _make(opts: dict[str, Any], split: str, n: int | None, seed: int) -> list[dict]:
    rng = make_rng("arithmetic", split, seed)
    rate = opts["corpus_error_rate"] if split == "train" else 0.0
    if _space_size(opts) <= ENUMERATE_LIMIT:
        problems = _enumerate(opts, split)
        size = min(DEFAULT_SIZE, len(problems)) if n is None else n
        if size > len(problems):
            raise ValueError(f"task 'arithmetic': asked for {size} '{split}' examples but these options "
                             f"give only {len(problems)} distinct ones")
        return [_example(list(o), ops, rng, rate) for o, ops in rng.sample(problems, size)]
    numbers = _operand_range(opts["digits"])

    def draw() -> tuple[str, str, dict] | None:
        operands = [rng.choice(numbers) for _ in range(opts["terms"])]
        ops = "".join(rng.choice(opts["ops"]) for _ in range(opts["terms"] - 1))
        if not _valid(tuple(operands), ops):
            return None
        return problem_key(operands, ops), _expression(operands, ops), {"operands": operands, "ops": ops}

    picked = sample_unique("arithmetic", split, DEFAULT_SIZE if n is None else n, draw)
    return [_example(p["operands"], p["ops"], rng, rate) for p in picked]


def build(**options: Any) -> Task:
    """The arithmetic task; options: digits, terms, ops, corpus_error_rate (docs/tasks.md)."""
    opts = _options(options)
    return Task(name="arithmetic", verifier="numeric", splits=GENERATED_SPLITS,
                make=lambda split, n, seed: _make(opts, split, n, seed), options=opts,
                categories=categories, step_check=check_steps)
