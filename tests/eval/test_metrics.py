"""pass@k, pass@1, cons@k and confidence intervals against hand values."""

import math
import subprocess
import sys

import pytest

from reasonrl.eval.metrics import (
    ci95,
    cons_at_k,
    majority_vote,
    mean_pass_at_k,
    pass_at_1,
    pass_at_k,
    per_problem_cons,
)


def test_pass_at_k_hand_values():
    # n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_at_k(5, 4, 2) == 1.0  # n - c = 1 < k: every pair holds a correct sample
    assert pass_at_k(5, 0, 2) == 0.0
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)  # pass@1 = c / n


def test_pass_at_k_matches_binomials():
    for n in range(1, 12):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


def test_pass_at_k_stable_for_large_n():
    # C(1000, 500) overflows a float; the product form does not
    v = pass_at_k(1000, 1, 500)
    assert v == pytest.approx(0.5)


def test_pass_at_k_rejects_bad_arguments():
    for n, c, k in [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


def test_pass_at_1_and_mean_pass_at_k():
    correct = [[1, 0, 0, 1], [True, True]]
    assert pass_at_1(correct) == pytest.approx((0.5 + 1.0) / 2)
    # pass@2: problem 0: 1 - C(2,2)/C(4,2) = 5/6; problem 1: 1
    assert mean_pass_at_k(correct, 2) == pytest.approx((5 / 6 + 1) / 2)
    with pytest.raises(ValueError):
        pass_at_1([[]])


def test_majority_vote_tie_breaks_on_first_appearance():
    assert majority_vote(["3", "5", "5", "3"]) == "3"  # 2-2 tie: "3" came first
    assert majority_vote(["5", "3", "3"]) == "3"
    assert majority_vote([None, "2", None]) == "2"  # missing answers never win
    assert majority_vote([None, None]) is None


def test_cons_at_k_with_gold_and_checker():
    answers = [["3", "5", "5", "3"], ["7", "7", "1"], [None, None]]
    assert per_problem_cons(answers, gold=["3", "1", "0"]) == [1.0, 0.0, 0.0]
    assert cons_at_k(answers, gold=["5", "7", "0"]) == pytest.approx(1 / 3)
    # a checker: votes are compared numerically
    gold = [3.0, 7.0, 0.0]
    assert cons_at_k(answers, correct_fn=lambda a, i: float(a) == gold[i]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="exactly one"):
        cons_at_k(answers)


def test_ci95_normal_and_wilson_hand_values():
    # normal: mean 0.75, s = 0.5 (Bessel), half = 1.96 * 0.5 / 2 = 0.49
    lo, hi = ci95([0, 1, 1, 1], method="normal")
    assert (lo, hi) == pytest.approx((0.75 - 0.48999, 0.75 + 0.48999), abs=1e-4)
    # Wilson 95% for 5/10 (textbook value): [0.2366, 0.7634]
    lo, hi = ci95([1] * 5 + [0] * 5, method="wilson")
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    # Wilson stays informative at 0%: upper bound 3.84 / 13.84 for 0/10
    assert ci95([0] * 10, method="wilson") == pytest.approx((0.0, 0.2775), abs=1e-4)


def test_ci95_bootstrap_deterministic_and_sensible():
    xs = [0.0, 0.25, 1.0, 0.5, 0.75, 1.0, 0.0, 0.5] * 4
    a = ci95(xs, seed=0)
    assert a == ci95(xs, seed=0)
    m = sum(xs) / len(xs)
    assert a[0] < m < a[1]
    # close to the normal interval for a sample this size
    nlo, nhi = ci95(xs, method="normal")
    assert a[0] == pytest.approx(nlo, abs=0.06) and a[1] == pytest.approx(nhi, abs=0.06)
    assert ci95([1.0, 1.0, 1.0]) == (1.0, 1.0)
    with pytest.raises(ValueError):
        ci95([], method="normal")
    with pytest.raises(ValueError, match="method"):
        ci95([1.0], method="exact")


def test_eval_modules_do_not_import_torch():
    code = (
        "import sys, reasonrl.eval.metrics, reasonrl.eval.analytics; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
