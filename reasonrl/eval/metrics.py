"""Evaluation metrics over k sampled answers per problem (pure Python, no torch).

Conventions: a *correct matrix* is one row per problem, one entry per sample (bool or 0/1).
Rows may have different lengths; every problem weighs the same in the average.

    >>> pass_at_k(5, 2, 2)                       # 1 - C(3,2)/C(5,2)
    0.7
    >>> cons_at_k([["3", "5", "5"], ["7", None, "1"]], gold=["5", "1"], k=3)   # ties: first seen
    0.5
    >>> paired_bootstrap_ci([0, 1, 0, 1], [1, 1, 0, 1])[0] >= 0.0
    True
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Callable, Hashable, Sequence

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples with ``c`` correct: ``1 - C(n-c, k) / C(n, k)``.

    Evaluated as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``, which never forms the (huge) binomials;
    exactly 1 when ``n - c < k`` (every k-subset contains a correct sample).
    """
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def per_problem_pass_at_k(correct: Sequence[Sequence[bool | int | float]], k: int) -> list[float]:
    """Unbiased pass@k of each problem (row) of a correct matrix."""
    return [pass_at_k(len(row), sum(1 for x in row if x), k) for row in correct]


def pass_at_1(correct: Sequence[Sequence[bool | int | float]]) -> float:
    """Mean over problems of the fraction of correct samples (R1's pass@1 over k samples)."""
    if not correct or any(len(row) == 0 for row in correct):
        raise ValueError("pass_at_1 needs at least one problem and one sample per problem")
    return sum(sum(1.0 for x in row if x) / len(row) for row in correct) / len(correct)


def mean_pass_at_k(correct: Sequence[Sequence[bool | int | float]], k: int) -> float:
    """Mean over problems of the unbiased pass@k."""
    scores = per_problem_pass_at_k(correct, k)
    if not scores:
        raise ValueError("no problems")
    return sum(scores) / len(scores)


def majority_vote(answers: Sequence[Hashable | None]) -> Hashable | None:
    """Most frequent non-None answer; ties go to the answer that appeared first.

    First appearance makes the vote deterministic and independent of hashing order. Answers should
    already be canonical strings (``"25"`` not ``"025"``) so equal answers compare equal.
    """
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


def cons_at_k(
    answers: Sequence[Sequence[Hashable | None]],
    gold: Sequence[Hashable] | None = None,
    k: int | None = None,
    correct_fn: Callable[[Hashable, int], bool] | None = None,
) -> float:
    """cons@k: fraction of problems whose majority vote over the first ``k`` answers is correct.

    ``k=None`` votes over every answer of a row. Give either ``gold`` (the voted answer must equal
    it) or ``correct_fn(voted, problem_index)`` (e.g. a math verifier). Ties go to the tied answer
    that appears first; ``None`` (no extractable answer) never wins, and a problem without any
    answer counts as wrong:

        >>> cons_at_k([["a", "b", "b", "a"]], gold=["a"], k=4)   # 2-2 tie, "a" came first
        1.0
        >>> cons_at_k([["a", "b", "b", "a"]], gold=["a"], k=3)   # "b" 2-1
        0.0
        >>> cons_at_k([[None, None, "x"]], gold=["x"])            # None never wins
        1.0
    """
    return _mean(per_problem_cons(answers, gold, correct_fn, k=k))


def per_problem_cons(
    answers: Sequence[Sequence[Hashable | None]],
    gold: Sequence[Hashable] | None = None,
    correct_fn: Callable[[Hashable, int], bool] | None = None,
    k: int | None = None,
) -> list[float]:
    """1.0/0.0 per problem for the majority-vote answer (see :func:`cons_at_k`)."""
    if (gold is None) == (correct_fn is None):
        raise ValueError("give exactly one of gold or correct_fn")
    if gold is not None and len(gold) != len(answers):
        raise ValueError(f"{len(answers)} problems but {len(gold)} gold answers")
    if k is not None and k < 1:
        raise ValueError(f"cons@k needs k >= 1, got {k}")
    out = []
    for i, row in enumerate(answers):
        voted = majority_vote(row if k is None else list(row)[:k])
        if voted is None:
            out.append(0.0)
        elif gold is not None:
            out.append(1.0 if voted == gold[i] else 0.0)
        else:
            out.append(1.0 if correct_fn(voted, i) else 0.0)
    return out


def _mean(xs: Sequence[float]) -> float:
    if not xs:
        raise ValueError("no problems")
    return sum(xs) / len(xs)


def _normal_ci(xs: Sequence[float]) -> tuple[float, float]:
    n = len(xs)
    m = _mean(xs)
    if n < 2:
        return (m, m)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))
    half = Z95 * sd / math.sqrt(n)
    return (m - half, m + half)


def _wilson_ci(xs: Sequence[float]) -> tuple[float, float]:
    # Treats the mean as a binomial proportion over problems: exact for 0/1 scores, and it stays
    # inside [0, 1] and non-degenerate at 0% or 100%, where the normal interval collapses.
    n = len(xs)
    p = _mean(xs)
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _percentiles(means: list[float]) -> tuple[float, float]:
    means = sorted(means)
    last = len(means) - 1
    return (means[int(0.025 * last)], means[int(math.ceil(0.975 * last))])


def _bootstrap_ci(xs: Sequence[float], n_boot: int, seed: int) -> tuple[float, float]:
    # Percentile bootstrap over problems; a private seeded RNG keeps reports reproducible.
    rng = random.Random(seed)
    n = len(xs)
    return _percentiles([sum(xs[rng.randrange(n)] for _ in range(n)) / n for _ in range(n_boot)])


def bootstrap_ci(values: Sequence[float], n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% bootstrap interval of the mean of per-problem ``values``.

    Problems are the resampling unit (``n_boot`` resamples of ``len(values)`` problems drawn with
    replacement, from ``random.Random(seed)``); the interval is the 2.5th and 97.5th percentile of
    the resampled means. Constant values give a zero-width interval:

        >>> bootstrap_ci([1.0, 1.0, 1.0])
        (1.0, 1.0)
    """
    xs = [float(x) for x in values]
    if not xs:
        raise ValueError("bootstrap_ci needs at least one problem")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    return _bootstrap_ci(xs, n_boot, seed)


def paired_bootstrap_ci(a: Sequence[float], b: Sequence[float], n_boot: int = 1000,
                        seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of ``mean(b) - mean(a)`` for two systems scored on the same
    problems (``a[i]`` and ``b[i]`` belong to problem i).

    Each resample draws problem indices with replacement and applies them to both vectors at once,
    so problem difficulty, shared by both systems, cancels: the interval is that of the mean of the
    per-problem differences ``b[i] - a[i]``. Identical vectors give ``(0.0, 0.0)``; a constant shift
    ``b = a + d`` gives ``(d, d)``:

        >>> paired_bootstrap_ci([0.0, 1.0, 0.5], [0.0, 1.0, 0.5])
        (0.0, 0.0)
    """
    if len(a) != len(b):
        raise ValueError(f"paired_bootstrap_ci needs vectors over the same problems, got {len(a)} and {len(b)}")
    return bootstrap_ci([float(y) - float(x) for x, y in zip(a, b)], n_boot=n_boot, seed=seed)


def ci95(
    per_problem: Sequence[float], method: str = "bootstrap", n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% confidence interval of the mean of per-problem scores (problems are the sampling unit).

    ``method``: ``"bootstrap"`` (percentile, ``n_boot`` resamples, fixed ``seed``; the default, it
    suits fractional pass@1 scores), ``"normal"`` (mean +- 1.96 s / sqrt(n), Bessel s) or
    ``"wilson"`` (score interval for 0/1 scores such as cons@k).
    """
    xs = [float(x) for x in per_problem]
    if not xs:
        raise ValueError("ci95 needs at least one problem")
    if method == "bootstrap":
        return _bootstrap_ci(xs, n_boot, seed)
    if method == "normal":
        return _normal_ci(xs)
    if method == "wilson":
        return _wilson_ci(xs)
    raise ValueError(f"unknown ci95 method {method!r}; choose bootstrap, normal or wilson")
