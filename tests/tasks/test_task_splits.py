"""Generated tasks: train / dev / test disjoint by canonical key, whatever the seed, size or options."""

import itertools

import pytest

from reasonrl.tasks import SPLIT_PERCENT, get_task, in_loop_eval_examples, in_loop_split
from reasonrl.tasks.arithmetic import problem_key
from reasonrl.tasks.base import split_of
from reasonrl.tasks.countdown import problem_key as countdown_key

SPLITS = ("train", "dev", "test")


def _arithmetic_key(example):
    return problem_key(example["meta"]["operands"], example["meta"]["ops"])


def test_every_generated_task_offers_train_dev_test():
    for spec in ("arithmetic", "countdown"):
        assert get_task(spec).splits == SPLITS
    assert sum(percent for _, percent in SPLIT_PERCENT) == 100


def test_shares_follow_split_percent():
    keys = [problem_key([a, b], "+") for a in range(10, 100) for b in range(a, 100)]  # one per a+b / b+a
    for split, percent in SPLIT_PERCENT:
        share = sum(split_of(k) == split for k in keys) / len(keys)
        assert abs(share - percent / 100) < 0.02, (split, share)


def test_two_digit_addition_splits_are_disjoint_including_swapped_operands():
    task = get_task("arithmetic")
    by_split = {"train": task.examples("train", n=7000, seed=3), "dev": task.examples("dev"),
                "test": task.examples("test")}  # dev and test: every problem of the split (< 1000)
    keys = {split: {_arithmetic_key(e) for e in examples} for split, examples in by_split.items()}
    for a, b in itertools.combinations(SPLITS, 2):
        assert not keys[a] & keys[b], (a, b)
    held_out = {e["prompt"] for e in by_split["train"] + by_split["dev"]}
    test_prompts = {e["prompt"] for e in by_split["test"]}
    for example in by_split["test"]:
        a, b = example["meta"]["operands"]
        swapped = f"What is {b}+{a}?"
        assert swapped not in held_out and swapped in test_prompts  # the whole test split is here


def test_any_permutation_of_a_sum_or_product_shares_its_split():
    for ops in ("+", "*"):
        task = get_task("arithmetic", digits=1, terms=3, ops=ops)
        test = task.examples("test")
        prompts = {split: {e["prompt"] for e in task.examples(split, n=None)} for split in SPLITS}
        for example in test:
            for perm in itertools.permutations(example["meta"]["operands"]):
                text = f"What is {ops.join(map(str, perm))}?"
                assert text in prompts["test"] and text not in prompts["train"] | prompts["dev"]


def test_sums_and_differences_share_a_split_when_the_signed_terms_match():
    assert problem_key([47, 38, 19], "+-") == problem_key([38, 47, 19], "+-")
    assert problem_key([85, 19, 3], "--") == problem_key([85, 3, 19], "--")
    assert problem_key([85, 19], "-") != problem_key([19, 85], "-")  # not the same problem
    assert problem_key([2, 3], "+") != problem_key([2, 3], "*")


@pytest.mark.parametrize("options", [{}, {"digits": 3}, {"digits": 2, "terms": 3, "ops": "+-"},
                                     {"digits": 1, "terms": 2, "ops": "*"}, {"corpus_error_rate": 0.5}])
def test_split_does_not_depend_on_seed_size_or_options(options):
    task = get_task("arithmetic", **options)
    for split in SPLITS:
        available = len(task.examples(split, n=None))  # 1-digit products have few dev problems
        for seed, n in ((0, 5), (1, 20), (7, 3)):
            examples = task.examples(split, n=min(n, available), seed=seed)
            assert all(split_of(_arithmetic_key(e)) == split for e in examples)
    # the same problem under other options (sizes, error rates, operator sets) keeps its split
    problem = next(e for e in get_task("arithmetic").examples("dev", n=50) if e["meta"]["operands"][0] < 50)
    for other in ({"ops": "+-"}, {"corpus_error_rate": 1.0}):
        dev = {e["prompt"] for e in get_task("arithmetic", **other).examples("dev", n=None)}
        assert problem["prompt"] in dev or len(dev) == 1000  # n=None caps at 1000 problems


def test_countdown_splits_are_disjoint_by_multiset_and_target():
    task = get_task("countdown")
    by_split = {"train": task.examples("train", n=2000), "dev": task.examples("dev", n=200),
                "test": task.examples("test", n=200)}
    keys = {s: {countdown_key(e["meta"]["numbers"], e["meta"]["target"]) for e in ex} for s, ex in by_split.items()}
    for a, b in itertools.combinations(SPLITS, 2):
        assert not keys[a] & keys[b], (a, b)
    assert countdown_key([12, 15, 18], 36) == countdown_key([18, 12, 15], 36)
    for split, examples in by_split.items():
        assert all(split_of(countdown_key(e["meta"]["numbers"], e["meta"]["target"])) == split for e in examples)


def test_in_loop_evaluation_uses_dev_with_a_fixed_seed():
    task = get_task("arithmetic")
    assert in_loop_split(task) == "dev"
    assert in_loop_split(get_task("math500")) == "test"  # a benchmark has nothing else
    dev = in_loop_eval_examples(task, 30)
    assert dev == in_loop_eval_examples(task, 30)
    assert all(split_of(_arithmetic_key(e)) == "dev" for e in dev)
