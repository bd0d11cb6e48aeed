import random

import pytest

from reasonrl.tasks import corpus_text, get_task, r1_completion, r1_zero_prompt, render_solution
from reasonrl.tasks.arithmetic import _example, _Slips, problem_key, solve
from reasonrl.tasks.base import split_of


@pytest.mark.parametrize("operands, ops, text, value", [
    ([47, 38], "+", "7+8=15 write 5 carry 1, 4+3+1=8 write 8", 85),
    ([57, 68], "+", "7+8=15 write 5 carry 1, 5+6+1=12 write 2 carry 1, write 1", 125),
    ([62, 15], "+", "2+5=7 write 7, 6+1=7 write 7", 77),
    ([47, 38, 12], "++", "7+8+2=17 write 7 carry 1, 4+3+1+1=9 write 9", 97),
    ([85, 19], "-", "15-9=6 write 6 borrow 1, 8-1-1=6 write 6", 66),
    ([47, 38, 19], "+-", "47+38: 7+8=15 write 5 carry 1, 4+3+1=8 write 8 = 85; "
                         "85-19: 15-9=6 write 6 borrow 1, 8-1-1=6 write 6 = 66", 66),
    ([3, 4, 5], "**", "3*4=12; 12*5: 2*5=10 write 0 carry 1, 1*5+1=6 write 6 = 60", 60),
])
def test_column_solutions(operands, ops, text, value):
    assert solve(operands, ops) == (text, value)


@pytest.mark.parametrize("operands, ops, slip, text, value", [
    ([47, 38], "+", 0, "7+8=15 write 5, 4+3=7 write 7", 75),  # forgotten carry: 10 short
    ([57, 68], "+", 1, "7+8=15 write 5 carry 1, 5+6+1=12 write 2", 25),  # final carry dropped
    ([85, 19], "-", 0, "15-9=6 write 6, 8-1=7 write 7", 76),  # borrow never paid back
])
def test_forgotten_carry_gives_the_consistent_wrong_answer(operands, ops, slip, text, value):
    assert solve(operands, ops, _Slips(slip)) == (text, value)


def test_example_format():
    example = _example([47, 38], "+", random.Random(0), 0.0)
    assert example == {
        "id": "arithmetic-47+38", "prompt": "What is 47+38?", "answer": "85",
        "solution": "7+8=15 write 5 carry 1, 4+3+1=8 write 8",
        "meta": {"source": "arithmetic", "operands": [47, 38], "ops": "+", "has_carry": True,
                 "corrupted": False, "solution_answer": "85", "step_check": "arithmetic"},
    }
    assert render_solution(example) == "What is 47+38?\n7+8=15 write 5 carry 1, 4+3+1=8 write 8\nAnswer: 85"
    assert r1_completion(example) == "<think>7+8=15 write 5 carry 1, 4+3+1=8 write 8</think><answer>85</answer>"
    prompt = r1_zero_prompt(example)
    assert prompt.endswith("\nUser: What is 47+38?\nAssistant: ") and "<think> </think>" in prompt
    assert corpus_text(example, "r1") == prompt + r1_completion(example)


def test_deterministic_per_seed():
    task = get_task("arithmetic")
    first = task.examples("train", n=50, seed=3)
    assert first == task.examples("train", n=50, seed=3)
    assert [e["id"] for e in first] != [e["id"] for e in task.examples("train", n=50, seed=4)]


def test_train_and_test_are_disjoint():
    task = get_task("arithmetic")
    test = task.examples("test")  # every test problem of 2-digit addition: about 5% of 90*90
    train = task.examples("train", n=5000, seed=1)
    assert 250 < len(test) < 600
    assert not {e["prompt"] for e in test} & {e["prompt"] for e in train}
    assert len({e["id"] for e in train}) == 5000
    assert all(split_of(problem_key(e["meta"]["operands"], e["meta"]["ops"])) == "train" for e in train)


def test_every_answer_is_the_true_value():
    for example in get_task("arithmetic", digits=2, terms=3, ops="+-").examples("train", n=200):
        expression = example["prompt"].removeprefix("What is ").removesuffix("?")
        assert example["answer"] == str(eval(expression))


def test_corpus_errors_only_in_train_and_only_where_a_carry_is():
    task = get_task("arithmetic", corpus_error_rate=1.0)
    train = task.examples("train", n=500)
    for example in train:
        a, b = example["meta"]["operands"]
        assert example["answer"] == str(a + b)
        assert example["meta"]["corrupted"] == example["meta"]["has_carry"]
        if example["meta"]["corrupted"]:
            assert int(example["answer"]) - int(example["meta"]["solution_answer"]) in (10, 100)
            assert render_solution(example).endswith(f"Answer: {example['meta']['solution_answer']}")
    assert not any(e["meta"]["corrupted"] for e in task.examples("test", n=100))


def test_corpus_error_rate_is_a_probability():
    train = get_task("arithmetic", corpus_error_rate=0.5).examples("train", n=1000)
    with_carry = [e for e in train if e["meta"]["has_carry"]]
    rate = sum(e["meta"]["corrupted"] for e in with_carry) / len(with_carry)
    assert 0.4 < rate < 0.6


def test_multiplication_of_one_digit_factors():
    examples = get_task("arithmetic", digits=1, terms=2, ops="*").examples("train", n=20)
    for example in examples:
        a, b = example["meta"]["operands"]
        assert example["answer"] == str(a * b) and example["solution"] == f"{a}*{b}={a * b}"


@pytest.mark.parametrize("options, message", [
    ({"digit": 2}, "unknown option 'digit' for task 'arithmetic'"),
    ({"digits": 0}, "'digits' must be an integer"),
    ({"ops": "/"}, "'ops' must be one of"),
    ({"ops": "*", "digits": 2}, "needs digits=1"),
    ({"corpus_error_rate": 1.5}, "'corpus_error_rate' must be in [0, 1]"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError) as info:
        get_task("arithmetic", **options)
    assert message in str(info.value)


def test_asking_for_more_than_exists_fails():
    with pytest.raises(ValueError, match="give only"):
        get_task("arithmetic", digits=1, ops="*").examples("test", n=50)
