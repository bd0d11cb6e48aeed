"""The `process` reward: the task's step check as a verifier, off unless the spec names it."""

from reasonrl.rewards import BUILTINS, get_verifier, score
from reasonrl.tasks import get_task, r1_completion

EX = {"answer": "85", "meta": {"source": "arithmetic", "operands": [47, 38], "ops": "+", "step_check": "arithmetic"}}
RIGHT = "<think>7+8=15 write 5 carry 1, 4+3+1=8 write 8</think><answer>85</answer>"
LUCKY = "<think>7+8=15 write 5 carry 1, 4+3=8 write 8</think><answer>85</answer>"


def test_scores_the_chain_not_the_answer():
    process = get_verifier("process")
    assert process.in_process  # a linear scan, like the other string checkers
    assert process(RIGHT, EX) == 1.0
    assert process(LUCKY, EX) == 0.0
    assert process("<think>it is 85</think><answer>85</answer>", EX) is None


def test_examples_without_a_step_check_are_not_scored():
    assert get_verifier("process")(RIGHT, {"answer": "85", "meta": {"verifier": "numeric"}}) is None


def test_generated_arithmetic_examples_name_their_step_check():
    example = get_task("arithmetic").examples("train", n=1)[0]
    assert example["meta"]["step_check"] == "arithmetic"
    assert get_verifier("process")(r1_completion(example), example) == 1.0


def test_composes_with_accuracy_and_is_not_on_by_default():
    result = score([RIGHT, LUCKY], [EX, EX], {"accuracy": 1.0, "process": 0.5})
    assert result.components["accuracy"] == [1.0, 1.0]
    assert result.components["process"] == [1.0, 0.0]
    assert result.rewards == [1.5, 1.0]
    assert "process" in BUILTINS
    from reasonrl.stages.rl import RLConfig

    assert "process" not in RLConfig().rewards
