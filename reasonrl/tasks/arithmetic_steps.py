"""Step checks for arithmetic chains of thought written in the corpus's column format.

A model pretrained on the arithmetic corpus imitates its worked solutions
(`7+8=15 write 5 carry 1, 4+3+1=8 write 8`, docs/tasks.md), so its chains can be read back
column by column and checked against the problem in `meta`: the digits each column takes
(operand digits plus the carry or borrow from the column before), the column's sum or
difference, the digit written, the carry or borrow passed on, each step's header and result,
and that the final answer is the number the written digits make. A right answer reached
through a dropped carry is caught here, where the answer check cannot see it.

Every pattern is anchored and bounded, so a check is a linear scan that cannot hang: the
`process` reward runs it in the trainer process.
"""

from __future__ import annotations

import re

COLUMN_NAMES = ("units", "tens", "hundreds", "thousands")
MAX_COMPLETION_CHARS = 20_000
_NUMBER = r"\d{1,30}"
_COLUMN = re.compile(rf"(?:(?P<fact>[0-9+*-]{{1,200}})=(?P<total>{_NUMBER}) )?write (?P<digit>{_NUMBER})"
                     rf"(?: (?P<kind>carry|borrow) (?P<carry>{_NUMBER}))?")
_HEADER = re.compile(rf"(?P<a>{_NUMBER})(?P<op>[-+*])(?P<b>{_NUMBER}): (?P<body>.+) = (?P<result>{_NUMBER})")
_TABLE = re.compile(rf"(?P<a>{_NUMBER})\*(?P<b>{_NUMBER})=(?P<c>{_NUMBER})")
_ADD_FACT = re.compile(rf"{_NUMBER}(?:\+{_NUMBER})*")
_SUB_FACT = re.compile(rf"{_NUMBER}(?:-{_NUMBER})+")
_MUL_FACT = re.compile(rf"(?P<x>{_NUMBER})\*(?P<d>{_NUMBER})(?:\+(?P<carry>{_NUMBER}))?")
_PLAIN_ANSWER = re.compile(r"(?:^|\n)Answer:[ \t]*([^\n]*)")


class WrongStep(Exception):
    """A step of the chain is false; the message says which and why."""


def column_name(column: int) -> str:
    """'units', 'tens', 'hundreds', 'thousands', then '10^4', '10^5', ..."""
    return COLUMN_NAMES[column] if column < len(COLUMN_NAMES) else f"10^{column}"


def _digit(n: int, col: int) -> int | None:
    return n // 10**col % 10 if col < len(str(n)) else None


def _columns(body: str) -> list[re.Match]:
    columns = []
    for part in body.split(","):
        match = _COLUMN.fullmatch(part.strip())
        if match is None:
            raise WrongStep(f"unreadable column {part.strip()!r}")
        columns.append(match)
    return columns


def _stated_carry(column: re.Match, kind: str) -> int:
    if column["kind"] is not None and column["kind"] != kind:
        raise WrongStep(f"'{column['kind']}' where a {kind} belongs")
    return int(column["carry"] or 0)


def _final_carry(columns: list[re.Match], col: int, carry: int) -> int:
    """The last column, which only writes the carry left over (`write 1`); returns its value."""
    if col >= len(columns):
        raise WrongStep(f"the carry {carry} out of the last column is never written")
    column = columns[col]
    if column["fact"] is not None or int(column["digit"]) != carry or column["kind"] is not None:
        raise WrongStep(f"{column_name(col)}: should only write the carry {carry}, got {column[0]!r}")
    return carry * 10**col


def _no_extra(columns: list[re.Match], used: int) -> None:
    if len(columns) > used:
        raise WrongStep(f"{len(columns)} columns written where the problem has {used}")


def _check_digit_and_carry(column: re.Match, col: int, digit: int, kind: str, carry_out: int) -> int:
    """The digit a column writes and the carry (borrow) it passes on; returns that carry."""
    name = column_name(col)
    if int(column["digit"]) != digit:
        raise WrongStep(f"{name}: writes {column['digit']} where the column gives {digit}")
    carry = _stated_carry(column, kind)
    if carry != carry_out:
        raise WrongStep(f"{name}: {kind} {carry} where the column gives {kind} {carry_out}")
    return carry


def check_addition(nums: list[int], body: str) -> int:
    """Check a column pass adding all of `nums`; returns the value of the written digits."""
    columns = _columns(body)
    width = max(len(str(n)) for n in nums)
    carry, value = 0, 0
    for col in range(width):
        if col >= len(columns):
            raise WrongStep(f"the {column_name(col)} column is missing")
        column = columns[col]
        inputs = [d for d in (_digit(n, col) for n in nums) if d is not None] + ([carry] if carry else [])
        if column["fact"] is not None:
            if not _ADD_FACT.fullmatch(column["fact"]):
                raise WrongStep(f"{column_name(col)}: {column['fact']!r} is not a sum")
            terms = [int(t) for t in column["fact"].split("+")]
            if sorted(terms) != sorted(inputs):
                raise WrongStep(f"{column_name(col)}: adds {column['fact']} but the column holds "
                                f"{'+'.join(map(str, inputs))}")
            if int(column["total"]) != sum(terms):
                raise WrongStep(f"{column_name(col)}: {column['fact']} is not {column['total']}")
        carry = _check_digit_and_carry(column, col, sum(inputs) % 10, "carry", sum(inputs) // 10)
        value += int(column["digit"]) * 10**col
    if carry:
        value += _final_carry(columns, width, carry)
    _no_extra(columns, width + (1 if carry else 0))
    return value


def check_subtraction(a: int, b: int, body: str) -> int:
    """Check the column pass of a-b (borrowed top digits shown as 15-9); returns its value."""
    columns = _columns(body)
    borrow, value = 0, 0
    for col in range(len(str(a))):
        if col >= len(columns):
            raise WrongStep(f"the {column_name(col)} column is missing")
        column, top, bottom = columns[col], _digit(a, col), _digit(b, col)
        taken = ([bottom] if bottom is not None else []) + ([borrow] if borrow else [])
        owes = 1 if top < sum(taken) else 0
        if column["fact"] is not None:
            if not _SUB_FACT.fullmatch(column["fact"]):
                raise WrongStep(f"{column_name(col)}: {column['fact']!r} is not a difference")
            first, *rest = (int(t) for t in column["fact"].split("-"))
            if first != top + 10 * owes or sorted(rest) != sorted(taken):
                wanted = "-".join(map(str, [top + 10 * owes, *taken]))
                raise WrongStep(f"{column_name(col)}: computes {column['fact']} where the column needs {wanted}")
            if int(column["total"]) != first - sum(rest):
                raise WrongStep(f"{column_name(col)}: {column['fact']} is not {column['total']}")
        borrow = _check_digit_and_carry(column, col, top + 10 * owes - sum(taken), "borrow", owes)
        value += int(column["digit"]) * 10**col
    _no_extra(columns, len(str(a)))
    return value


def check_multiplication(a: int, d: int, body: str) -> int:
    """Check a*d for a 1-digit factor d: a table fact for 1-digit a, else columns; returns it."""
    if a < 10:
        fact = _TABLE.fullmatch(body.strip())
        if fact is None or sorted((int(fact["a"]), int(fact["b"]))) != sorted((a, d)):
            raise WrongStep(f"{body.strip()!r} is not the table fact {a}*{d}")
        if int(fact["c"]) != a * d:
            raise WrongStep(f"{a}*{d} is not {fact['c']}")
        return a * d
    columns = _columns(body)
    width, carry, value = len(str(a)), 0, 0
    for col in range(width):
        if col >= len(columns):
            raise WrongStep(f"the {column_name(col)} column is missing")
        column, x = columns[col], _digit(a, col)
        fact = _MUL_FACT.fullmatch(column["fact"] or "")
        if fact is None or sorted((int(fact["x"]), int(fact["d"]))) != sorted((x, d)) \
                or int(fact["carry"] or 0) != carry:
            raise WrongStep(f"{column_name(col)}: {column['fact']!r} where the column needs {x}*{d}"
                            + (f"+{carry}" if carry else ""))
        if int(column["total"]) != x * d + carry:
            raise WrongStep(f"{column_name(col)}: {column['fact']} is not {column['total']}")
        total = x * d + carry
        carry = _check_digit_and_carry(column, col, total % 10, "carry", total // 10)
        value += int(column["digit"]) * 10**col
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
    before a plain-format `Answer:` line) and the content of the last <answer> tag (or of the
    first `Answer:` line); str.find, not a lazy regex, so many open tags cost one pass."""
    start = completion.rfind("<answer>")
    end = completion.find("</answer>", start) if start >= 0 else -1
    plain = _PLAIN_ANSWER.search(completion)
    answer = completion[start + len("<answer>"):end].strip() if end >= 0 else plain.group(1).strip() if plain else None
    for end in ("</think>", "<answer>"):
        if end in completion:
            return completion.split(end, 1)[0].replace("<think>", ""), answer
    reasoning = completion[:plain.start()] if plain else completion
    return reasoning.replace("<think>", ""), answer


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
    steps = [" ".join(s.split()) for s in reasoning.split(";")]
    if not any("write " in s or _TABLE.search(s) for s in steps):
        return None, "no recognisable steps"
    try:
        value = _check_chain([int(x) for x in operands], ops, steps)
        if answer is not None and answer != str(value):
            raise WrongStep(f"answers {answer!r} but the written digits make {value}")
    except WrongStep as wrong:
        return False, str(wrong)
    return True, "every step checks"


def check_steps(completion: str, example: dict) -> bool | None:
    """The arithmetic task's step check (Task.step_check; the `process` reward's 'arithmetic')."""
    return diagnose(completion, example)[0]
