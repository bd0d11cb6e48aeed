"""The scoring path of `reasonrl eval` without a model: gold solutions score ~100%, another
problem's answer ~0%; consensus, per-problem scores, breakdowns and process checks."""

import pytest

from reasonrl.eval.evaluate import (
    Scored,
    breakdown,
    category_keys,
    consensus,
    example_categories,
    problem_scores,
    process_checks,
    score_completions,
    strict_slot,
    summary,
)
from reasonrl.rewards import RewardRuntime
from reasonrl.tasks import get_task


@pytest.fixture(scope="module")
def runtime():
    with RewardRuntime(num_workers=1) as rt:
        yield rt


def _pass1(runtime, task, examples, completions, **kw):
    return summary(problem_scores(score_completions(runtime, task, examples, completions, **kw)), n_boot=50)["pass@1"]


def test_math500_gold_solutions_score_all_and_shuffled_answers_none(runtime):
    task = get_task("math500")
    examples = task.examples("test", 120, seed=0)
    assert _pass1(runtime, task, examples, [[ex["solution"]] for ex in examples]) == 1.0  # the dataset's text
    boxed = [["\\boxed{" + ex["answer"] + "}"] for ex in examples]
    assert _pass1(runtime, task, examples, boxed, extract_order="boxed") == 1.0  # strict, R1's slot
    assert _pass1(runtime, task, examples, boxed, extract_order="answer_tag") == 0.0  # strict, the wrong slot
    shuffled = [["\\boxed{" + examples[(i + 1) % len(examples)]["answer"] + "}"] for i in range(len(examples))]
    assert _pass1(runtime, task, examples, shuffled) <= 0.03  # rare coincidences (two problems answer 2)


def test_gsm8k_gold_solutions_score_all_and_shuffled_answers_none(runtime):
    task = get_task("gsm8k")
    examples = task.examples("test", 120, seed=0)
    solutions = [[f"{ex['solution']}\n#### {ex['answer']}"] for ex in examples]
    assert _pass1(runtime, task, examples, solutions) == 1.0
    tagged = [[f"<think>{ex['solution']}</think><answer>{ex['answer']}</answer>"] for ex in examples]
    assert _pass1(runtime, task, examples, tagged, extract_order="answer_tag") == 1.0
    shuffled = [[f"#### {examples[(i + 1) % len(examples)]['answer']}"] for i in range(len(examples))]
    assert _pass1(runtime, task, examples, shuffled) <= 0.03


def test_gpqa_example_scores_gold_letters_and_option_text(runtime):
    task = get_task("gpqa_example")
    examples = task.examples("test")
    assert len(examples) == 6 and task.verifier == "choice"
    gold = [[f"<answer>{ex['answer']}</answer>", f"The answer is ({ex['answer']})."] for ex in examples]
    scores = problem_scores(score_completions(runtime, task, examples, gold))
    assert scores["pass@1"] == [1.0] * 6 and scores["format_failure"] == [0.0] * 6
    wrong = [["<answer>" + next(c for c in "ABCD" if c != ex["answer"]) + "</answer>"] for ex in examples]
    assert _pass1(runtime, task, examples, wrong) == 0.0
    text = [["<answer>" + ex["choices"]["ABCD".index(ex["answer"])] + "</answer>"] for ex in examples]
    assert _pass1(runtime, task, examples, text) == 1.0  # the option's text counts as its letter
    assert set(category_keys(examples)) == {"domain", "subdomain"}


def test_code_example_scores_correct_programs_one_and_wrong_ones_zero(runtime):
    task = get_task("code_example")
    examples = task.examples("test")
    assert len(examples) == 4 and task.verifier == "code"
    right = [[f"<think>easy</think>\n```python\n{ex['solution']}```"] for ex in examples]
    wrong = [["```python\nprint(input())\n```"] for _ in examples]  # echoes: wrong on every problem
    assert problem_scores(score_completions(runtime, task, examples, right))["pass@1"] == [1.0] * 4
    scored = score_completions(runtime, task, examples, wrong)
    assert [row[0] for row in scored.correct] == [0.0] * 4
    assert scored.answers[0][0] == "print(input())\n"  # the program is the extracted answer
    no_code = score_completions(runtime, task, examples[:1], [["I would loop over the input."]])
    assert no_code.correct == [[0.0]] and no_code.answers == [[None]]


def test_consensus_uses_the_verdict_of_the_voted_answer():
    assert consensus([0.0, 1.0, 1.0], ["3", "$0.5$", "0.5"]) == 1.0  # delimiters stripped: 0.5 wins 2-1
    assert consensus([1.0, 0.0, 0.0], ["2", "3", "4"]) == 1.0  # three-way tie: the first seen
    assert consensus([0.0, 0.0], [None, None]) == 0.0
    assert consensus([0.0, 1.0, 1.0, 0.0], ["7", "5", "5", "7"], k=1) == 0.0  # first answer only


def test_problem_scores_and_summary():
    scored = Scored(correct=[[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]], answers=[["1", None, "2"], ["5", "5", "5"]])
    scores = problem_scores(scored, lengths=[[2, 4, 6], [1, 1, 1]])
    assert scores["pass@1"] == [pytest.approx(1 / 3), 1.0]
    assert scores["pass@3"] == [1.0, 1.0] and scores["pass@2"][0] == pytest.approx(1 - 1 / 3)
    assert scores["cons@k"] == [1.0, 1.0] and scores["format_failure"] == [pytest.approx(1 / 3), 0.0]
    out = summary(scores, n_boot=100)
    assert out["pass@k"].keys() == {"1", "2", "3"} and out["mean_length"] == pytest.approx(2.5)
    assert set(out["ci95"]) == {"pass@1", "pass@3", "cons@k"}


def test_breakdown_by_meta_and_task_categories():
    from dataclasses import dataclass

    examples = [{"meta": {"subject": "Algebra", "level": 1, "unique_id": "a"}},
                {"meta": {"subject": "Algebra", "level": 2, "unique_id": "b"}},
                {"meta": {"subject": "Geometry", "level": 2, "unique_id": "c"}}]
    assert category_keys(examples) == ["subject", "level"]  # identifiers are not categories

    @dataclass
    class WithCategories:
        categories: object = staticmethod(lambda ex: {"subject": "x", "size": "big"})

    rows = example_categories(WithCategories(), examples)
    assert rows[0] == {"subject": "Algebra", "level": "1", "task:subject": "x", "size": "big"}
    table = breakdown(rows, {"pass@1": [1.0, 0.0, 0.5], "cons@k": [1.0, 0.0, 1.0]})
    assert table["subject"]["Algebra"] == {"pass@1": 0.5, "cons@k": 0.5, "n": 2}
    assert table["level"]["2"]["n"] == 2 and table["size"]["big"]["n"] == 3


def test_process_checks_only_with_a_step_check():
    class Plain:
        pass

    class Checked:
        @staticmethod
        def step_check(text, example):
            return None if not text else "ok" in text

    from reasonrl.eval.evaluate import _process_stats

    assert process_checks(Plain(), [{}], ["x"], [1.0]) is None
    stats = process_checks(Checked(), [{}] * 4, ["ok", "bad", "ok", ""], [1.0, 1.0, 0.0, 1.0])
    assert set(stats) >= {"cot_valid_rate", "right_answer_wrong_reasoning"}
    # the fallback used before reasonrl.tasks.process exists
    stats = _process_stats(["ok", "bad", "ok", ""], [{}] * 4, [True, True, False, True], Checked.step_check)
    assert stats["cot_valid_rate"] == pytest.approx(2 / 3)
    assert stats["right_answer_wrong_reasoning"] == pytest.approx(1 / 2)  # of the judged correct ones


def test_strict_slot_follows_the_prompt_format():
    assert strict_slot("r1_math") == "boxed"
    assert strict_slot("r1_zero") == strict_slot("chat") == "answer_tag"
