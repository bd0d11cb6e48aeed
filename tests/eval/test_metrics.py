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


def test_pass_at_k_edge_cases():
    assert pass_at_k(4, 1, 4) == 1.0  # k = n: the one subset holds the correct sample
    assert pass_at_k(4, 0, 4) == 0.0  # c = 0
    assert pass_at_k(3, 3, 3) == 1.0
    assert pass_at_k(6, 4, 3) == 1.0  # n - c = 2 < k = 3
    assert pass_at_k(6, 3, 3) == pytest.approx(1 - 1 / 20)  # 1 - C(3,3)/C(6,3)


def test_cons_at_k_first_k_ties_and_none():
    rows = [["a", "b", "b", "a"], [None, None, "x", "y"], [None, None], ["7", "8", "8"]]
    gold = ["a", "x", "z", "7"]
    # k=4: 2-2 tie -> "a" (first seen); None never wins -> "x" (tie with y, first); no answer -> wrong;
    # "8" wins 2-1
    assert per_problem_cons(rows, gold=gold, k=4) == [1.0, 1.0, 0.0, 0.0]
    # k=1: the first answer only ("a", None, None, "7")
    assert per_problem_cons(rows, gold=gold, k=1) == [1.0, 0.0, 0.0, 1.0]
    # k=3: "b" 2-1; "x" alone; "8" 2-1
    assert cons_at_k(rows, gold, 3) == pytest.approx(1 / 4)
    assert cons_at_k(rows, gold) == cons_at_k(rows, gold, 4)  # k=None: every answer
    with pytest.raises(ValueError, match="k >= 1"):
        cons_at_k(rows, gold, 0)


def test_bootstrap_ci_percentiles():
    from reasonrl.eval.metrics import bootstrap_ci

    assert bootstrap_ci([0.5] * 7) == (0.5, 0.5)
    assert bootstrap_ci([0, 1, 1, 0], seed=3) == bootstrap_ci([0, 1, 1, 0], seed=3)
    # [0, 0, 0, 1]: a resample's mean is j/4, j ~ Binomial(4, 1/4): P(j=0) = 0.316, P(j<=2) = 0.949,
    # P(j<=3) = 0.996, so the 2.5th percentile is 0 and the 97.5th is 3/4
    assert bootstrap_ci([0, 0, 0, 1], n_boot=4000) == (0.0, 0.75)
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_paired_bootstrap_hand_cases():
    from reasonrl.eval.metrics import paired_bootstrap_ci

    a = [0.0, 0.5, 1.0, 0.25, 0.75]
    assert paired_bootstrap_ci(a, a) == (0.0, 0.0)  # identical systems: exactly no difference
    assert paired_bootstrap_ci(a, [x + 0.25 for x in a]) == (0.25, 0.25)  # a constant shift
    # differences [1, 0]: the 4 equally likely resamples have means 1, 1/2, 1/2, 0 -> CI [0, 1]
    # around the observed difference 1/2
    assert paired_bootstrap_ci([0, 1], [1, 1], n_boot=2000) == (0.0, 1.0)
    # resampling pairs jointly: a problem both systems solve or both fail adds no spread, unlike
    # two independent intervals
    lo, hi = paired_bootstrap_ci([0, 1, 0, 1, 0, 1, 0, 1], [1, 1, 0, 1, 0, 1, 0, 1], n_boot=4000)
    assert lo == 0.0 and hi == 0.375  # differences [1,0,..,0]: j/8, j ~ Binomial(8, 1/8), 97.5th pct = 3/8
    with pytest.raises(ValueError, match="same problems"):
        paired_bootstrap_ci([0, 1], [1])
