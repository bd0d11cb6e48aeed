"""Countdown: combine the given numbers with + - * / to reach a target.

Problems are built the way the game is played: repeatedly combine two numbers of the pool into
one (keeping every intermediate a positive integer), so every problem has the generated
expression as a witness solution. The checker accepts any expression that uses each given
number exactly once and evaluates exactly to the target.
"""

from __future__ import annotations

import ast
import random
from fractions import Fraction
from typing import Any

from .base import DEFAULT_SIZE, GENERATED_SPLITS, Task, check_int, check_options, make_rng, sample_unique

DEFAULTS: dict[str, Any] = {"numbers": 3, "max_number": 20, "max_target": 100}
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
AST_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
MAX_EXPRESSION_CHARS = 200


def _wrap(expr: str, prec: int, parent: str, right: bool) -> str:
    # Parentheses only where the operator precedence (and - and / being non-associative) needs them.
    need = prec < PRECEDENCE[parent] or (right and parent in "-/" and prec == PRECEDENCE[parent])
    return f"({expr})" if need else expr


def _combine(a: tuple, b: tuple, op: str) -> tuple | None:
    """(value, expression, precedence) of a op b, or None if it leaves the positive integers."""
    if op == "-" and a[0] < b[0]:
        a, b = b, a
    if op == "/" and b[0] > a[0]:
        a, b = b, a
    if op == "-" and a[0] == b[0] or op == "/" and (b[0] == 1 or a[0] % b[0]):
        return None
    value = {"+": a[0] + b[0], "-": a[0] - b[0], "*": a[0] * b[0], "/": a[0] // max(b[0], 1)}[op]
    expr = f"{_wrap(a[1], a[2], op, False)}{op}{_wrap(b[1], b[2], op, True)}"
    return value, expr, PRECEDENCE[op], f"{a[0]}{op}{b[0]}={value}"


def _draw(rng: random.Random, opts: dict[str, Any]) -> tuple[str, str, dict] | None:
    numbers = [rng.randint(1, opts["max_number"]) for _ in range(opts["numbers"])]
    pool = [(x, str(x), 3) for x in numbers]
    steps = []
    while len(pool) > 1:
        a, b = (pool.pop(rng.randrange(len(pool))) for _ in range(2))
        made = _combine(a, b, rng.choice("+-*/"))
        if made is None:
            return None
        pool.append(made[:3])
        steps.append(made[3])
    target, expression = pool[0][0], pool[0][1]
    if not 1 <= target <= opts["max_target"]:
        return None
    key = problem_key(numbers, target)
    listed = ", ".join(map(str, numbers))
    return key, key, {
        "id": f"countdown-{','.join(map(str, sorted(numbers)))}-{target}",
        "prompt": f"Using the numbers {listed}, make {target}. Use each number exactly once, "
                  "with + - * / and parentheses.",
        "answer": expression,
        "solution": ", ".join(steps),
        "meta": {"source": "countdown", "numbers": numbers, "target": target},
    }


def problem_key(numbers: list[int], target: int) -> str:
    """The split key: the multiset of numbers and the target, so any reordering shares a split."""
    return f"countdown:{','.join(map(str, sorted(numbers)))}->{target}"


def categories(example: dict) -> dict[str, str]:
    """How many numbers the problem gives."""
    return {"numbers": str(len(example["meta"]["numbers"]))}


def _evaluate(node: ast.AST, used: list[int]) -> Fraction:
    if isinstance(node, ast.BinOp) and type(node.op) in AST_OPS:
        left, right = _evaluate(node.left, used), _evaluate(node.right, used)
        op = AST_OPS[type(node.op)]
        return left + right if op == "+" else left - right if op == "-" else left * right if op == "*" else left / right
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return Fraction(node.value)
    raise ValueError("not a countdown expression")


def countdown_score(expression: str, example: dict) -> float:
    """1.0 if `expression` uses each of the example's numbers exactly once and equals its target.

    Only integers, + - * /, parentheses and spaces are allowed; a trailing `= <value>` is
    ignored. Anything else (other numbers, repeats, a wrong value, division by zero) scores 0.0.
    """
    text = expression.split("=")[0].strip()
    if not text or len(text) > MAX_EXPRESSION_CHARS or set(text) - set("0123456789+-*/() "):
        return 0.0
    used: list[int] = []
    try:
        value = _evaluate(ast.parse(text, mode="eval").body, used)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return 0.0
    meta = example["meta"]
    return float(sorted(used) == sorted(meta["numbers"]) and value == meta["target"])


def build(**options: Any) -> Task:
    """The countdown task; options: numbers (how many), max_number, max_target (docs/tasks.md)."""
    opts = check_options("countdown", options, DEFAULTS)
    check_int("countdown", "numbers", opts["numbers"], 2, 6)
    check_int("countdown", "max_number", opts["max_number"], 2, 1000)
    check_int("countdown", "max_target", opts["max_target"], 1)

    def make(split: str, n: int | None, seed: int) -> list[dict]:
        rng = make_rng("countdown", split, seed)
        return sample_unique("countdown", split, DEFAULT_SIZE if n is None else n, lambda: _draw(rng, opts))

    return Task(name="countdown", verifier="countdown", splits=GENERATED_SPLITS, make=make, options=opts,
                categories=categories)
