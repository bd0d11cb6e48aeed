"""process_stats and task-declared categories."""

import pytest

from reasonrl.tasks import get_task, process_stats, resolve_step_check
from reasonrl.tasks.arithmetic_steps import check_steps
from reasonrl.tasks.process import process_metrics

EX = {"answer": "85", "meta": {"operands": [47, 38], "ops": "+", "step_check": "arithmetic"}}
RIGHT = "<think>7+8=15 write 5 carry 1, 4+3+1=8 write 8</think><answer>85</answer>"
LUCKY = "<think>7+8=15 write 5 carry 1, 4+3=8 write 8</think><answer>85</answer>"   # wrong step, right answer
WRONG = "<think>7+8=15 write 5, 4+3=7 write 7</think><answer>75</answer>"
VAGUE = "<think>easy</think><answer>85</answer>"


def test_rates_count_only_checkable_completions():
    texts = [RIGHT, LUCKY, WRONG, VAGUE]
    stats = process_stats(texts, [EX] * 4, [True, True, False, True], check_steps)
    # checkable: RIGHT (valid), LUCKY (invalid), WRONG (invalid); correct among them: RIGHT, LUCKY
    assert stats == {"cot_valid_rate": pytest.approx(1 / 3), "right_answer_wrong_reasoning": 0.5}


def test_rates_are_none_without_a_denominator():
    assert process_stats([VAGUE], [EX], [True], check_steps) == {
        "cot_valid_rate": None, "right_answer_wrong_reasoning": None}
    # checkable but no correct answer: nothing to measure right_answer_wrong_reasoning on
    assert process_stats([WRONG], [EX], [False], check_steps) == {
        "cot_valid_rate": 0.0, "right_answer_wrong_reasoning": None}
    assert process_stats([RIGHT], [EX], None, check_steps)["right_answer_wrong_reasoning"] is None


def test_metric_keys_leave_out_what_was_not_measured():
    assert process_metrics("process", [RIGHT, WRONG], [EX, EX], [True, False], check_steps) == {
        "process/cot_valid_rate": 0.5, "process/right_answer_wrong_reasoning": 0.0}
    assert process_metrics("eval", [VAGUE], [EX], [True], check_steps) == {}
    assert process_metrics("eval", [RIGHT], [EX], [True], None) == {}


def test_step_checks_resolve_by_name_or_module_function():
    assert resolve_step_check("arithmetic") is check_steps
    assert resolve_step_check("reasonrl.tasks.arithmetic_steps:check_steps") is check_steps
    with pytest.raises(KeyError, match="unknown step check 'nope'"):
        resolve_step_check("nope")


def test_arithmetic_categories_name_the_carrying_columns():
    categories = get_task("arithmetic").categories
    example = lambda operands, ops: {"meta": {"operands": operands, "ops": ops}}  # noqa: E731
    assert categories(example([62, 15], "+")) == {"op": "+", "carry": "none"}
    assert categories(example([47, 38], "+")) == {"op": "+", "carry": "units"}
    assert categories(example([57, 61], "+")) == {"op": "+", "carry": "tens"}
    assert categories(example([57, 68], "+")) == {"op": "+", "carry": "units+tens"}
    assert categories(example([85, 19], "-")) == {"op": "-", "carry": "units"}
    assert categories(example([509, 600], "+")) == {"op": "+", "carry": "hundreds"}
    assert categories(example([99999, 1], "+")) == {"op": "+", "carry": "units+tens+hundreds+thousands+10^4"}
    assert categories(example([47, 38, 19], "+-")) == {"op": "+-", "carry": "units"}


def test_countdown_categories_and_tasks_without_any():
    assert get_task("countdown", numbers=4).categories({"meta": {"numbers": [1, 2, 3, 4], "target": 10}}) == {
        "numbers": "4"}
    assert get_task("countdown").step_check is None
    assert get_task("math500").categories is None and get_task("math500").step_check is None
