import pytest

from reasonrl.tasks import get_task


def test_reasoning_gym_task_is_deterministic_and_disjoint():
    import reasoning_gym

    task = get_task("rg:chain_sum")
    assert task.name == "rg:chain_sum" and task.verifier == "reasoning_gym"
    train = task.examples("train", n=300, seed=0)
    test = task.examples("test", n=30, seed=0)
    assert train[:30] == task.examples("train", n=30, seed=0)
    assert train[:30] != task.examples("train", n=30, seed=1)
    assert not {e["prompt"] for e in train} & {e["prompt"] for e in test}
    example = test[0]
    assert example["meta"]["rg_dataset"] == "chain_sum"
    assert example["meta"]["rg"]["question"] == example["prompt"]
    score = reasoning_gym.get_score_answer_fn("chain_sum")
    assert score(example["answer"], example["meta"]["rg"]) == 1.0


def test_reasoning_gym_errors():
    with pytest.raises(ValueError, match="unknown option 'bogus' for task 'rg:chain_sum'"):
        get_task("rg:chain_sum", bogus=1)
    with pytest.raises(ValueError, match="rg:no_such_dataset"):
        get_task("rg:no_such_dataset")


def test_reasoning_gym_dev_is_disjoint_from_train_and_test():
    task = get_task("rg:chain_sum")
    assert task.splits == ("train", "dev", "test")
    train = {e["prompt"] for e in task.examples("train", n=300, seed=0)}
    dev = task.examples("dev", n=30, seed=0)
    test = {e["prompt"] for e in task.examples("test", n=30, seed=0)}
    assert len({e["prompt"] for e in dev}) == 30 and dev[0]["id"].startswith("rg-chain_sum-dev-")
    assert not {e["prompt"] for e in dev} & (train | test)
    # another seed draws other dev questions, still never a train question of any seed
    assert not {e["prompt"] for e in task.examples("dev", n=30, seed=5)} & train
