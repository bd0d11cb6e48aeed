import pytest

from reasonrl.tasks import countdown_score, get_task

EXAMPLE = {"answer": "(12-7)*3", "meta": {"numbers": [3, 7, 12], "target": 15}}


@pytest.mark.parametrize("expression, score", [
    ("(12-7)*3", 1.0),
    ("3*(12-7)", 1.0),
    ("(12 - 7) * 3 = 15", 1.0),
    ("12-7*3", 0.0),           # -9
    ("(12-7)*3*1", 0.0),       # 1 is not one of the numbers
    ("(12-7)*3+3-3", 0.0),     # 3 used three times
    ("12+3", 0.0),             # 7 unused
    ("3/(7-7)*12", 0.0),       # division by zero
    ("(12-7)**3", 0.0),        # power is not allowed
    ("__import__('os')", 0.0),
    ("", 0.0),
])
def test_countdown_score(expression, score):
    assert countdown_score(expression, EXAMPLE) == score


def test_fractions_in_between_are_exact():
    example = {"meta": {"numbers": [1, 3, 4, 6], "target": 24}}
    assert countdown_score("6/(1-3/4)", example) == 1.0


def test_examples_are_solved_by_their_answer():
    task = get_task("countdown")
    assert task.verifier == "countdown"
    for example in task.examples("train", n=200):
        meta = example["meta"]
        assert len(meta["numbers"]) == 3 and all(1 <= x <= 20 for x in meta["numbers"])
        assert 1 <= meta["target"] <= 100
        assert countdown_score(example["answer"], example) == 1.0
        assert f"make {meta['target']}." in example["prompt"]


def test_deterministic_and_disjoint():
    task = get_task("countdown", numbers=4)
    train = task.examples("train", n=1000, seed=0)
    assert train == task.examples("train", n=1000, seed=0)
    assert train[:20] != task.examples("train", n=20, seed=1)
    test = task.examples("test", n=200, seed=0)
    assert not {e["id"] for e in train} & {e["id"] for e in test}


def test_unknown_option():
    with pytest.raises(ValueError, match="unknown option 'size' for task 'countdown'"):
        get_task("countdown", size=3)
