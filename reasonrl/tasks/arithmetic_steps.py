"""Step checks for arithmetic chains of thought written in the corpus's column format.

A model pretrained on the arithmetic corpus imitates its worked solutions
(`7+8=15 write 5 carry 1, 4+3+1=8 write 8`, docs/tasks.md), so its chains can be read back
column by column and checked against the problem in `meta`: the digits each column takes
(operand digits plus the carry or borrow from the column before), the column's sum or
difference, the digit written, the carry or borrow passed on, each step's header and result,
and that the final answer is the number the written digits make. A right answer reached
through a dropped carry is caught here, where the answer check cannot see it.

Columns may be written in any of the corpus's surface forms, foreign ones included, in any mix
(arithmetic_forms). A self-check after a column (`wait, 7+8=15, so carry 1`) that restates the
column rightly replaces the carry it stated: a slip caught and fixed is a valid chain, an
uncorrected one is not. A final `check: 47+38=85 ok` must restate the problem and its value.

Every pattern is anchored and bounded, so a check is a linear scan that cannot hang: the
`process` reward runs it in the trainer process.
"""

from __future__ import annotations

import re
from typing import Callable

from .arithmetic_forms import (ReadColumn, WrongStep, column_name, looks_like_steps, read_columns, read_table,
                               split_verification)

__all__ = ["WrongStep", "check_steps", "column_name", "diagnose", "split_completion"]

MAX_COMPLETION_CHARS = 20_000
_NUMBER = r"\d{1,30}"
_HEADER = re.compile(rf"(?P<a>{_NUMBER})(?P<op>[-+*])(?P<b>{_NUMBER}): (?P<body>.+) = (?P<result>{_NUMBER})")
_ADD_FACT = re.compile(rf"{_NUMBER}(?:\+{_NUMBER})*")
_SUB_FACT = re.compile(rf"{_NUMBER}(?:-{_NUMBER})+")
_MUL_FACT = re.compile(rf"(?P<x>{_NUMBER})\*(?P<d>{_NUMBER})(?:\+(?P<carry>{_NUMBER}))?")
_PLAIN_ANSWER = re.compile(r"(?:^|\n)(?:Answer:|The answer is)[ \t]*([^\n]*)")


def _digit(n: int, col: int) -> int | None:
    return n // 10**col % 10 if col < len(str(n)) else None


def _stated_carry(column: ReadColumn, kind: str) -> int:
    if column.kind is not None and column.kind != kind:
        raise WrongStep(f"'{column.kind}' where a {kind} belongs")
    return column.carry


def _final_carry(columns: list[ReadColumn], col: int, carry: int) -> int:
    """The last column, which only writes the carry left over (`write 1`); returns its value."""
    if col >= len(columns):
        raise WrongStep(f"the carry {carry} out of the last column is never written")
    column = columns[col]
    if column.fact is not None or column.digit != carry or column.kind is not None or column.fix is not None:
        raise WrongStep(f"{column_name(col)}: should only write the carry {carry}, got {column.text!r}")
    return carry * 10**col


def _no_extra(columns: list[ReadColumn], used: int) -> None:
    if len(columns) > used:
        raise WrongStep(f"{len(columns)} columns written where the problem has {used}")


def _check_digit_and_carry(column: ReadColumn, col: int, digit: int, kind: str, carry_out: int,
                           check_fact: Callable[[ReadColumn], None]) -> int:
    """The digit a column writes and the carry (borrow) it passes on; returns that carry. A
    self-check after the column (`wait, 7+8=15, so carry 1`) must restate the column's fact
    rightly, and its carry is the one passed on: a forgotten carry caught and fixed is valid."""
    name = column_name(col)
    if column.digit != digit:
        raise WrongStep(f"{name}: writes {column.digit} where the column gives {digit}")
    stated = column
    if column.fix is not None:
        if column.fix.fact is None:
            raise WrongStep(f"{name}: the self-check {column.fix.text!r} states no fact")
        check_fact(column.fix)
        stated = column.fix
    carry = _stated_carry(stated, kind)
    if carry != carry_out:
        raise WrongStep(f"{name}: {kind} {carry} where the column gives {kind} {carry_out}")
    return carry


def _check_sum(name: str, inputs: list[int]) -> Callable[[ReadColumn], None]:
    def check(column: ReadColumn) -> None:
        if not _ADD_FACT.fullmatch(column.fact):
            raise WrongStep(f"{name}: {column.fact!r} is not a sum")
        terms = [int(t) for t in column.fact.split("+")]
        if sorted(terms) != sorted(inputs):
            raise WrongStep(f"{name}: adds {column.fact} but the column holds {'+'.join(map(str, inputs))}")
        if column.total != sum(terms):
            raise WrongStep(f"{name}: {column.fact} is not {column.total}")
    return check


def check_addition(nums: list[int], body: str) -> int:
    """Check a column pass adding all of `nums`; returns the value of the written digits."""
    columns = read_columns(body)
    width = max(len(str(n)) for n in nums)
    carry, value = 0, 0
    for col in range(width):
        if col >= len(columns):
            raise WrongStep(f"the {column_name(col)} column is missing")
        column = columns[col]
        inputs = [d for d in (_digit(n, col) for n in nums) if d is not None] + ([carry] if carry else [])
        check = _check_sum(column_name(col), inputs)
        if column.fact is not None:
            check(column)
        carry = _check_digit_and_carry(column, col, sum(inputs) % 10, "carry", sum(inputs) // 10, check)
        value += column.digit * 10**col
    if carry:
        value += _final_carry(columns, width, carry)
    _no_extra(columns, width + (1 if carry else 0))
    return value


def _check_difference(name: str, top: int, taken: list[int]) -> Callable[[ReadColumn], None]:
    def check(column: ReadColumn) -> None:
        if not _SUB_FACT.fullmatch(column.fact):
            raise WrongStep(f"{name}: {column.fact!r} is not a difference")
        first, *rest = (int(t) for t in column.fact.split("-"))
        if first != top or sorted(rest) != sorted(taken):
            wanted = "-".join(map(str, [top, *taken]))
            raise WrongStep(f"{name}: computes {column.fact} where the column needs {wanted}")
        if column.total != first - sum(rest):
            raise WrongStep(f"{name}: {column.fact} is not {column.total}")
    return check


def check_subtraction(a: int, b: int, body: str) -> int:
    """Check the column pass of a-b (borrowed top digits shown as 15-9); returns its value."""
    columns = read_columns(body)
    borrow, value = 0, 0
    for col in range(len(str(a))):
        if col >= len(columns):
            raise WrongStep(f"the {column_name(col)} column is missing")
        column, top, bottom = columns[col], _digit(a, col), _digit(b, col)
        taken = ([bottom] if bottom is not None else []) + ([borrow] if borrow else [])
        owes = 1 if top < sum(taken) else 0
        check = _check_difference(column_name(col), top + 10 * owes, taken)
        if column.fact is not None:
            check(column)
        borrow = _check_digit_and_carry(column, col, top + 10 * owes - sum(taken), "borrow", owes, check)
        value += column.digit * 10**col
    _no_extra(columns, len(str(a)))
    return value


def _check_product(name: str, x: int, d: int, carry: int) -> Callable[[ReadColumn], None]:
    def check(column: ReadColumn) -> None:
        fact = _MUL_FACT.fullmatch(column.fact or "")
        if fact is None or sorted((int(fact["x"]), int(fact["d"]))) != sorted((x, d)) \
                or int(fact["carry"] or 0) != carry:
            raise WrongStep(f"{name}: {column.fact!r} where the column needs {x}*{d}" + (f"+{carry}" if carry else ""))
        if column.total != x * d + carry:
            raise WrongStep(f"{name}: {column.fact} is not {column.total}")
    return check


def check_multiplication(a: int, d: int, body: str) -> int:
    """Check a*d for a 1-digit factor d: a table fact for 1-digit a, else columns; returns it."""
    if a < 10:
        fact = read_table(body)
        if fact is None or sorted(fact[:2]) != sorted((a, d)):
            raise WrongStep(f"{body.strip()!r} is not the table fact {a}*{d}")
        if fact[2] != a * d:
            raise WrongStep(f"{a}*{d} is not {fact[2]}")
        return a * d
    columns = read_columns(body)
    width, carry, value = len(str(a)), 0, 0
    for col in range(width):
        if col >= len(columns):
            raise WrongStep(f"the {column_name(col)} column is missing")
        column, x = columns[col], _digit(a, col)
        check = _check_product(column_name(col), x, d, carry)
        check(column)
        total = x * d + carry
        carry = _check_digit_and_carry(column, col, total % 10, "carry", total // 10, check)
        value += column.digit * 10**col
    if carry:
        value += _final_carry(columns, width, carry)
    _no_extra(columns, width + (1 if carry else 0))
    return value


STEP_CHECKERS = {
    "+": lambda a, b, body: check_addition([a, b], body),
    "-": check_subtraction,
    "*": check_multiplication,
}


def _check_step(value: int, op: str, x: int, text: str) -> int:
    """One binary step `85-19: <columns> = 66` (the header may be left out); returns its result."""
    header = _HEADER.fullmatch(text)
    if header is not None:
        if (int(header["a"]), header["op"], int(header["b"])) != (value, op, x):
            raise WrongStep(f"step {header['a']}{header['op']}{header['b']} where the problem needs {value}{op}{x}")
        text = header["body"]
    result = STEP_CHECKERS[op](value, x, text)
    if header is not None and int(header["result"]) != result:
        raise WrongStep(f"{value}{op}{x}: claims {header['result']} but its columns make {result}")
    return result


def _check_chain(operands: list[int], ops: str, steps: list[str]) -> int:
    """Check every step, as `solve` lays them out; returns the value the chain reaches."""
    if set(ops) == {"+"}:  # one column pass over all operands
        if len(steps) != 1:
            raise WrongStep(f"{len(steps)} steps written for a single column pass")
        return check_addition(list(operands), steps[0])
    if len(steps) != len(ops):
        raise WrongStep(f"{len(steps)} steps written where the problem has {len(ops)}")
    value = operands[0]
    for op, x, text in zip(ops, operands[1:], steps):
        value = _check_step(value, op, x, text)
    return value


def split_completion(completion: str) -> tuple[str, str | None]:
    """(reasoning, final answer or None): the text before </think> (or before <answer>, or
    before a plain-format `Answer:` or `The answer is` line) and the content of the last <answer>
    tag (or of the first plain answer line, without a sentence-final period); str.find, not a
    lazy regex, so many open tags cost one pass."""
    start = completion.rfind("<answer>")
    end = completion.find("</answer>", start) if start >= 0 else -1
    plain = _PLAIN_ANSWER.search(completion)
    answer = completion[start + len("<answer>"):end].strip() if end >= 0 else _plain_answer(plain)
    for end in ("</think>", "<answer>"):
        if end in completion:
            return completion.split(end, 1)[0].replace("<think>", ""), answer
    reasoning = completion[:plain.start()] if plain else completion
    return reasoning.replace("<think>", ""), answer


def _plain_answer(line: re.Match | None) -> str | None:
    if line is None:
        return None
    answer = line.group(1).strip()
    return answer[:-1].rstrip() if answer.endswith(".") else answer


def _expression(operands: list[int], ops: str) -> str:
    return str(operands[0]) + "".join(op + str(x) for op, x in zip(ops, operands[1:]))


def _check_verification(claim: tuple[str, int] | None, operands: list[int], ops: str, value: int) -> None:
    """A final `check: 47+38=85 ok` must restate the problem and the value the chain reached."""
    if claim is None:
        return
    expression, claimed = claim
    if expression != _expression(operands, ops):
        raise WrongStep(f"the check {expression} is not the problem {_expression(operands, ops)}")
    if claimed != value:
        raise WrongStep(f"the check claims {claimed} but the written digits make {value}")


def diagnose(completion: str, example: dict) -> tuple[bool | None, str]:
    """(verdict, why): True when every step checks, False naming the first false step, None
    when the example is not an arithmetic problem or the completion has no recognisable step."""
    meta = example.get("meta") or {}
    operands, ops = meta.get("operands"), meta.get("ops")
    if not operands or not isinstance(ops, str) or len(ops) != len(operands) - 1 or set(ops) - set("+-*"):
        return None, "not an arithmetic problem"
    if len(completion) > MAX_COMPLETION_CHARS:
        return None, "too long to check"
    reasoning, answer = split_completion(completion)
    reasoning, claim = split_verification(" ".join(reasoning.split()))
    steps = [s.strip() for s in reasoning.split(";")]
    if not any(looks_like_steps(s) for s in steps):
        return None, "no recognisable steps"
    try:
        operands = [int(x) for x in operands]
        value = _check_chain(operands, ops, steps)
        _check_verification(claim, operands, ops, value)
        if answer is not None and answer != str(value):
            raise WrongStep(f"answers {answer!r} but the written digits make {value}")
    except WrongStep as wrong:
        return False, str(wrong)
    return True, "every step checks"


def check_steps(completion: str, example: dict) -> bool | None:
    """The arithmetic task's step check (Task.step_check; the `process` reward's 'arithmetic')."""
    return diagnose(completion, example)[0]
