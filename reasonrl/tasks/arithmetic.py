"""Synthetic multi-step arithmetic with compact column-by-column solutions.

47+38 is solved as `7+8=15 write 5 carry 1, 4+3+1=8 write 8` with answer `85`. With
`corpus_error_rate` > 0, that fraction of *training* solutions that involve a carry (or borrow)
forgets one of them and reaches the wrong answer that mistake implies: the corpus then teaches
an imperfect model, which leaves RL something to fix. The gold `answer` is always correct.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any, Callable

from .arithmetic_forms import FOREIGN, FORMS, Column, join_columns, render_column, table_fact, verification
from .arithmetic_steps import check_steps, column_name
from .base import DEFAULT_SIZE, GENERATED_SPLITS, Task, check_int, check_options, make_rng, sample_unique, split_of

DEFAULTS: dict[str, Any] = {"digits": 2, "terms": 2, "ops": "+", "corpus_error_rate": 0.0, "surface_forms": 1,
                            "foreign_step_rate": 0.0, "self_check_rate": 0.0, "verify_rate": 0.0}
OP_SETS = {"+": "+", "-": "-", "+-": "+-", "-+": "+-", "*": "*"}
# Problem spaces up to this size are enumerated (exact sampling without replacement).
ENUMERATE_LIMIT = 200_000


class _Slips:
    """Counts carry/borrow events and forgets the one numbered `forget` (None: forget none).

    With `correct`, the forgotten carry is not lost: its column is marked for a self-check that
    restores it, and the rest of the solution is the correct one. Also records the columns
    (0 = units) a carry or borrow leaves, for the problem's categories.
    """

    def __init__(self, forget: int | None = None, correct: bool = False):
        self.forget, self.correct = forget, correct
        self.count = 0
        self.columns: set[int] = set()

    def apply(self, column: int, carry: int) -> tuple[int, bool]:
        """(the carry passed on, whether its column is corrected) for a column's carry."""
        if not carry:
            return 0, False
        self.count += 1
        self.columns.add(column)
        if self.count - 1 != self.forget:
            return carry, False
        return (carry, True) if self.correct else (0, False)


def _digit(n: int, col: int) -> int | None:
    return n // 10**col % 10 if col < len(str(n)) else None


def _join(terms: list[int], op: str) -> str | None:
    return op.join(map(str, terms)) if len(terms) > 1 else None


def _add_columns(nums: list[int], slips: _Slips) -> tuple[list[Column], int]:
    width = max(len(str(n)) for n in nums)
    carry, value, columns = 0, 0, []
    for col in range(width):
        column = [d for d in (_digit(n, col) for n in nums) if d is not None] + ([carry] if carry else [])
        total = sum(column)
        carry, corrected = slips.apply(col, total // 10)
        columns.append(Column(_join(column, "+"), total, total % 10, "carry", carry, corrected))
        value += total % 10 * 10**col
    if carry:
        columns.append(Column(None, carry, carry, "carry", 0))
        value += carry * 10**width
    return columns, value


def _sub_columns(a: int, b: int, slips: _Slips) -> tuple[list[Column], int]:
    if a < b:
        raise ValueError("negative intermediate result")
    borrow, value, columns = 0, 0, []
    for col in range(len(str(a))):
        top, bottom = _digit(a, col), _digit(b, col)
        column = [bottom] if bottom is not None else []
        column += [borrow] if borrow else []
        diff = top - sum(column)
        owes = 1 if diff < 0 else 0
        top, diff = (top + 10, diff + 10) if owes else (top, diff)
        # a forgotten borrow: borrowed here but not paid back in the next column
        borrow, corrected = slips.apply(col, owes)
        fact = "-".join(map(str, [top] + column)) if column else None
        columns.append(Column(fact, diff, diff, "borrow", borrow, corrected))
        value += diff * 10**col
    return columns, value


def _mul_digit(a: int, d: int, slips: _Slips) -> tuple[list[Column] | None, int]:
    if a < 10:
        return None, a * d  # a table fact, stated whole
    carry, value, columns = 0, 0, []
    width = len(str(a))
    for col in range(width):
        total = _digit(a, col) * d + carry
        fact = f"{_digit(a, col)}*{d}" + (f"+{carry}" if carry else "")
        carry, corrected = slips.apply(col, total // 10)
        columns.append(Column(fact, total, total % 10, "carry", carry, corrected))
        value += total % 10 * 10**col
    if carry:
        columns.append(Column(None, carry, carry, "carry", 0))
        value += carry * 10**width
    return columns, value


STEP_FNS = {"+": lambda a, b, s: _add_columns([a, b], s), "-": _sub_columns, "*": _mul_digit}


@dataclass
class Step:
    """One binary step a op b = result (the whole sum for pure additions); `columns` None: a table fact."""

    a: int
    op: str
    b: int
    columns: list[Column] | None
    result: int


def solve_steps(operands: list[int], ops: str, slips: _Slips | None = None) -> tuple[list[Step], int]:
    """The steps of operands[0] ops[0] operands[1] ..., left to right, and the final value.
    Pure additions are one column pass over all operands."""
    slips = slips or _Slips()
    if set(ops) == {"+"}:
        columns, value = _add_columns(operands, slips)
        return [Step(operands[0], "+", operands[1], columns, value)], value
    value, steps = operands[0], []
    for op, x in zip(ops, operands[1:]):
        columns, new = STEP_FNS[op](value, x, slips)
        steps.append(Step(value, op, x, columns, new))
        value = new
    return steps, value


def render_steps(steps: list[Step], form: str = "write", language: Callable[[], str | None] | None = None) -> str:
    """Step text in a surface form (arithmetic_forms): a single step is its columns; several are
    `85-19: <columns> = 66` joined by `; ` (a table fact stands alone, it needs no header).
    `language()` is asked once per column, in order: a foreign form's name, or None."""
    texts = []
    for step in steps:
        if step.columns is None:
            texts.append(table_fact(step.a, step.b, form))
            continue
        parts = [render_column(c, i, form, language() if language else None) for i, c in enumerate(step.columns)]
        body = join_columns(parts, form)
        # a body that already opens with the step (`9-5=4 write 4`, the running value being one
        # digit) has always gone without the header; kept so that the default corpus is unchanged
        whole = len(steps) == 1 or body.startswith(f"{step.a}{step.op}{step.b}=")
        texts.append(body if whole else f"{step.a}{step.op}{step.b}: {body} = {step.result}")
    return "; ".join(texts)


def solve(operands: list[int], ops: str, slips: _Slips | None = None) -> tuple[str, int]:
    """Step text (the `write` form) and final value of operands[0] ops[0] operands[1] ..."""
    steps, value = solve_steps(operands, ops, slips)
    return render_steps(steps), value


def _expression(operands: list[int], ops: str) -> str:
    return str(operands[0]) + "".join(op + str(x) for op, x in zip(ops, operands[1:]))


@dataclass(frozen=True)
class CorpusStyle:
    """How train solutions are written besides their slips (docs/tasks.md, "Corpus styles"); the
    defaults are the original corpus: one form, no foreign steps, no self-checks."""

    surface_forms: int = 1
    foreign_step_rate: float = 0.0
    self_check_rate: float = 0.0
    verify_rate: float = 0.0

    @classmethod
    def from_options(cls, opts: dict[str, Any]) -> CorpusStyle:
        return cls(opts["surface_forms"], opts["foreign_step_rate"], opts["self_check_rate"], opts["verify_rate"])


PLAIN_STYLE = CorpusStyle()


def _slipped(operands: list[int], ops: str, rng: random.Random, error_rate: float, style: CorpusStyle,
             count: int) -> tuple[list[Step], int, str | None] | None:
    """(steps, value reached, "corrected" or None) of a solution with a forgotten carry, or None
    when this one has none. Draws in the original order, so default options give the same corpus."""
    if not count or error_rate <= 0 or rng.random() >= error_rate:
        return None
    slip = rng.randrange(count)
    if style.self_check_rate > 0 and rng.random() < style.self_check_rate:
        steps, value = solve_steps(operands, ops, _Slips(slip, correct=True))
        return steps, value, "corrected"
    try:
        steps, value = solve_steps(operands, ops, _Slips(slip))
    except ValueError:  # the slip drove a later subtraction negative: keep the clean solution
        return None
    return steps, value, None


def _foreign_picker(rng: random.Random, rate: float) -> tuple[Callable[[], str | None] | None, list[str]]:
    """A per-column draw of a foreign form (rate `rate`, the script drawn uniformly), and the list
    of the forms it picked; no draw at all at rate 0."""
    picked: list[str] = []
    if rate <= 0:
        return None, picked

    def language() -> str | None:
        if rng.random() >= rate:
            return None
        picked.append(rng.choice(FOREIGN))
        return picked[-1]
    return language, picked


def _example(operands: list[int], ops: str, rng: random.Random, error_rate: float,
             style: CorpusStyle = PLAIN_STYLE) -> dict:
    events = _Slips()  # forgets nothing; counts the carries a slip could hit
    steps, value = solve_steps(operands, ops, events)
    final, check, corrupted = value, None, False
    slipped = _slipped(operands, ops, rng, error_rate, style, events.count)
    if slipped is not None:
        steps, final, check = slipped
        corrupted = check is None  # a slip caught by its self-check reaches the right answer
    expr = _expression(operands, ops)
    if check is None and not corrupted and style.verify_rate > 0 and rng.random() < style.verify_rate:
        check = "verified"
    form = FORMS[rng.randrange(style.surface_forms)] if style.surface_forms > 1 else FORMS[0]
    language, foreign = _foreign_picker(rng, style.foreign_step_rate)
    solution = render_steps(steps, form, language)
    if check == "verified":
        solution += ". " + verification(expr, value)
    meta = {"source": "arithmetic", "operands": list(operands), "ops": ops,
            "has_carry": events.count > 0, "corrupted": corrupted, "solution_answer": str(final),
            "step_check": "arithmetic"}  # the `process` reward finds check_steps by this name
    if style != PLAIN_STYLE:  # the original corpus's examples keep their original keys
        meta.update(form=form, foreign_steps=len(foreign), self_check=check)
    return {"id": f"arithmetic-{expr}", "prompt": f"What is {expr}?", "answer": str(value),
            "solution": solution, "meta": meta}


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
    check_int("arithmetic", "surface_forms", opts["surface_forms"], 1, len(FORMS))
    for name in ("corpus_error_rate", "foreign_step_rate", "self_check_rate", "verify_rate"):
        rate = opts[name]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
            raise ValueError(f"task 'arithmetic': option '{name}' must be in [0, 1], got {rate!r}")
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
    # slips and corpus styles shape train solutions only: dev and test keep the original form
    rate = opts["corpus_error_rate"] if split == "train" else 0.0
    style = CorpusStyle.from_options(opts) if split == "train" else PLAIN_STYLE
    if _space_size(opts) <= ENUMERATE_LIMIT:
        problems = _enumerate(opts, split)
        size = min(DEFAULT_SIZE, len(problems)) if n is None else n
        if size > len(problems):
            raise ValueError(f"task 'arithmetic': asked for {size} '{split}' examples but these options "
                             f"give only {len(problems)} distinct ones")
        return [_example(list(o), ops, rng, rate, style) for o, ops in rng.sample(problems, size)]
    numbers = _operand_range(opts["digits"])

    def draw() -> tuple[str, str, dict] | None:
        operands = [rng.choice(numbers) for _ in range(opts["terms"])]
        ops = "".join(rng.choice(opts["ops"]) for _ in range(opts["terms"] - 1))
        if not _valid(tuple(operands), ops):
            return None
        return problem_key(operands, ops), _expression(operands, ops), {"operands": operands, "ops": ops}

    picked = sample_unique("arithmetic", split, DEFAULT_SIZE if n is None else n, draw)
    return [_example(p["operands"], p["ops"], rng, rate, style) for p in picked]


def build(**options: Any) -> Task:
    """The arithmetic task; options: digits, terms, ops, corpus_error_rate (docs/tasks.md)."""
    opts = _options(options)
    return Task(name="arithmetic", verifier="numeric", splits=GENERATED_SPLITS,
                make=lambda split, n, seed: _make(opts, split, n, seed), options=opts,
                categories=categories, step_check=check_steps)
