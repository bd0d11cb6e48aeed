"""The countdown task's own checker is wired as the `countdown` verifier (its `accuracy`)."""

from reasonrl.rewards import get_verifier, score
from reasonrl.tasks import get_task


def test_countdown_verifier_scores_task_examples():
    task = get_task("countdown")
    verifier = get_verifier(task.verifier)
    for example in task.examples("test", 5, seed=0):
        assert verifier(f"<think>..</think><answer>{example['answer']}</answer>", example) == 1.0
        assert verifier("<answer>1+1</answer>", example) == 0.0
        assert verifier("no answer at all", example) == 0.0


def test_accuracy_uses_the_task_verifier_from_meta():
    example = {**get_task("countdown").examples("test", 1, seed=0)[0]}
    example["meta"] = {**example.get("meta", {}), "verifier": "countdown"}
    rewards, _ = score([f"<answer>{example['answer']}</answer>"], [example], {"accuracy": 1.0})
    assert rewards == [1.0]
