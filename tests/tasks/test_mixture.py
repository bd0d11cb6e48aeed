import pytest

from reasonrl.rewards import get_verifier
from reasonrl.tasks import get_task
from reasonrl.tasks.mixture import shares

MEMBERS = [{"task": "arithmetic", "weight": 3, "options": {"digits": 2}},
           {"task": "countdown", "options": {"numbers": 2, "max_number": 20, "max_target": 50}}]


def test_shares_follow_the_weights_and_add_up():
    assert shares(8, [3.0, 1.0]) == [6, 2]
    assert shares(10, [1.0, 1.0, 1.0]) == [4, 3, 3]  # the remainder goes to the first of equals
    assert sum(shares(1001, [0.7, 0.2, 0.1])) == 1001


def test_mixture_draws_each_family_in_its_share_with_its_own_verifier():
    task = get_task("mix", tasks=MEMBERS)
    examples = task.examples("train", 40, seed=3)
    families = [ex["meta"]["family"] for ex in examples]
    assert families.count("arithmetic") == 30 and families.count("countdown") == 10
    assert {ex["meta"]["verifier"] for ex in examples} == {"numeric", "countdown"}
    assert families != sorted(families)  # shuffled, not one family after the other
    assert task.examples("train", 40, seed=3) == examples  # same seed, same draw


def test_per_example_verifier_judges_each_family_by_its_checker():
    check = get_verifier("per_example")
    examples = get_task("mix", tasks=MEMBERS).examples("dev", 20, seed=0)
    assert [check(f"<answer>{ex['answer']}</answer>", ex) for ex in examples] == [1.0] * 20
    # a number is no countdown expression using the given numbers, and 0 is no sum of two 2-digit numbers
    assert [check("<answer>0</answer>", ex) for ex in examples] == [0.0] * 20


def test_mixture_splits_stay_disjoint():
    task = get_task("mix", tasks=MEMBERS)
    train = {ex["id"] for ex in task.examples("train", 400, seed=0)}
    test = {ex["id"] for ex in task.examples("test", 40, seed=0)}
    assert not train & test


def test_categories_and_step_check_come_from_the_member():
    task = get_task("mix", tasks=MEMBERS)
    examples = task.examples("dev", 20, seed=0)
    arith = next(ex for ex in examples if ex["meta"]["family"] == "arithmetic")
    count = next(ex for ex in examples if ex["meta"]["family"] == "countdown")
    assert task.categories(arith)["family"] == "arithmetic" and "carry" in task.categories(arith)
    assert task.categories(count) == {"family": "countdown", "numbers": "2"}
    assert task.step_check("<think>x</think>", count) is None


@pytest.mark.parametrize("tasks, message", [
    ([], "non-empty list"),
    ([{"task": "arithmetic", "weight": 0}], "weight must be a number > 0"),
    ([{"task": "arithmetic", "wieght": 1}], "tasks[0] must be a mapping"),
    ([{"task": "math500"}], "worker pool"),
    ([{"task": "mix", "options": {}}], "itself a mixture"),
])
def test_bad_mixtures_fail_with_one_clear_message(tasks, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        get_task("mix", tasks=tasks)
