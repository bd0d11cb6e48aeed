"""Verifier QA on real benchmark data: gold answers must score correct, perturbed answers
incorrect. Shared by the tests (fast: 100 items, slow: all) and docs/rewards.md's numbers."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def benchmark_path(name: str) -> Path:
    """The vendored copy under reasonrl/data/benchmarks/, else ../shared/benchmarks/."""
    for candidate in (REPO / "reasonrl" / "data" / "benchmarks" / name,
                      REPO.parent / "shared" / "benchmarks" / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"benchmark file {name} not found (vendored or shared)")


def load_gold(name: str) -> list[str]:
    """Gold answers: MATH-500's `answer`; GSM8K's text after `####` (commas removed)."""
    golds = []
    with open(benchmark_path(name)) as fh:
        for line in fh:
            row = json.loads(line)
            if "####" in row["answer"]:
                golds.append(row["answer"].split("####")[-1].strip().replace(",", ""))
            else:
                golds.append(row["answer"].strip())
    return golds


def as_number(text: str) -> Fraction | None:
    try:
        return Fraction(text.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def perturb(golds: list[str], i: int, same) -> str | None:
    """Numeric gold + 1; otherwise the next gold (cyclically) that `same` finds not equal."""
    number = as_number(golds[i])
    if number is not None:
        bumped = number + 1
        return str(bumped.numerator) if bumped.denominator == 1 else str(float(bumped))
    for step in range(1, len(golds)):
        other = golds[(i + step) % len(golds)]
        if not same(golds[i], other):
            return other
    return None


def completions(answer: str) -> dict[str, str]:
    return {
        "boxed": f"Some reasoning.\nSo the final answer is $\\boxed{{{answer}}}$.",
        "answer_tag": f"<think>Some reasoning.</think>\n<answer>{answer}</answer>",
    }
