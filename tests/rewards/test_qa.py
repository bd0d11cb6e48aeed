"""Verifier QA on MATH-500 and GSM8K (docs/rewards.md records the full-data rates)."""

import pytest

from reasonrl.rewards.answers import math_accuracy
from tests.rewards.qa import completions, load_gold, perturb


def same(a: str, b: str) -> bool:
    return math_accuracy(f"\\boxed{{{b}}}", {"answer": a}) == 1.0


def qa_rates(runtime, name: str, limit: int | None) -> dict:
    golds = load_gold(name)
    items = range(len(golds) if limit is None else min(limit, len(golds)))
    texts, examples, labels = [], [], []
    for i in items:
        wrong = perturb(golds, i, same)
        for style in ("boxed", "answer_tag"):
            for answer, label in ((golds[i], 1.0), (wrong, 0.0)):
                texts.append(completions(answer)[style])
                examples.append({"answer": golds[i], "id": i})
                labels.append((label, style))
    result = runtime.score(texts, examples, spec={"math": 1.0}, timeout_s=30.0)
    failures = {}
    for value, status, (label, style), ex in zip(result.components["math"], result.status["math"],
                                                 labels, examples):
        if value != label or status != "ok":
            kind = "false_negative" if label == 1.0 else "false_positive"
            failures.setdefault(f"{style}/{kind}", []).append(ex["id"])
    n = len(items)
    return {"n": n, "failures": failures,
            "worst_rate": max((len(v) / n for v in failures.values()), default=0.0)}


@pytest.mark.parametrize("name", ["math500.jsonl", "gsm8k_test.jsonl"])
def test_verifier_qa_first_100(runtime, name):
    rates = qa_rates(runtime, name, limit=100)
    assert rates["worst_rate"] <= 0.01, rates["failures"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["math500.jsonl", "gsm8k_test.jsonl"])
def test_verifier_qa_full(runtime, name):
    rates = qa_rates(runtime, name, limit=None)
    print(name, rates)
    assert rates["worst_rate"] <= 0.01, rates["failures"]
