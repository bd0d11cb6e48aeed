"""A mixture of tasks: RL "for all scenarios" draws its prompts from several task families.

`get_task("mix", tasks=[{"task": "arithmetic", "weight": 3, "options": {"digits": 2}},
{"task": "countdown", "weight": 1, "options": {"numbers": 2}}])`. Each family keeps its own
splits, verifier (in `meta["verifier"]`, which the `accuracy` reward and the `per_example`
verifier read), categories and step check; the mixture adds the category `family`.
"""

from __future__ import annotations

from typing import Any, Callable

from .base import DEFAULT_SIZE, Task, make_rng

# The mixture's own verifier: each example is judged by the verifier its family set.
PER_EXAMPLE = "per_example"


def _members(spec: Any, get_task: Callable[..., Task]) -> list[tuple[Task, float]]:
    if not isinstance(spec, list) or not spec:
        raise ValueError("task 'mix': option 'tasks' must be a non-empty list of {task, weight, options}")
    members = []
    for i, item in enumerate(spec):
        if not isinstance(item, dict) or "task" not in item or set(item) - {"task", "weight", "options"}:
            raise ValueError(f"task 'mix': tasks[{i}] must be a mapping with 'task' and optional 'weight', "
                             f"'options'; got {item!r}")
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise ValueError(f"task 'mix': tasks[{i}].weight must be a number > 0, got {weight!r}")
        if item["task"] == "mix":
            raise ValueError(f"task 'mix': tasks[{i}] is itself a mixture; list its members instead")
        members.append((get_task(item["task"], **(item.get("options") or {})), float(weight)))
    _check_in_process(members)
    return members


def _check_in_process(members: list[tuple[Task, float]]) -> None:
    # `per_example` dispatches inside the trainer, which is safe only for the linear-time checkers
    # (math-verify, code and user verifiers need the worker pool's timeouts).
    from reasonrl.rewards.base import BUILTINS

    for task, _ in members:
        if not BUILTINS.get(task.verifier, ("", False))[1]:
            raise ValueError(f"task 'mix': member '{task.name}' uses verifier '{task.verifier}', which runs in the "
                             "worker pool; a mixture takes tasks with in-process checkers "
                             f"({', '.join(n for n, (_, inp) in BUILTINS.items() if inp)})")


def shares(total: int, weights: list[float]) -> list[int]:
    """`total` split in proportion to `weights`, largest remainders first (sums to `total`)."""
    exact = [total * w / sum(weights) for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def build(*, tasks: Any = None, get_task: Callable[..., Task]) -> Task:
    """The mixture of `tasks` (see the module docstring)."""
    members = _members(tasks, get_task)
    splits = tuple(s for s in members[0][0].splits if all(s in t.splits for t, _ in members))
    if not splits:
        raise ValueError("task 'mix': its members share no split")
    by_name = {task.name: task for task, _ in members}

    def make(split: str, n: int | None, seed: int) -> list[dict]:
        counts = shares(DEFAULT_SIZE if n is None else n, [w for _, w in members])
        examples = []
        for (task, _), count in zip(members, counts):
            for example in task.examples(split, count, seed):
                example["meta"]["family"] = task.name
                examples.append(example)
        make_rng("mix", split, seed).shuffle(examples)
        return examples

    def categories(example: dict) -> dict[str, str]:
        task = by_name[example["meta"]["family"]]
        return {"family": task.name, **(task.categories(example) if task.categories else {})}

    def step_check(completion: str, example: dict) -> bool | None:
        task = by_name[example["meta"]["family"]]
        return task.step_check(completion, example) if task.step_check else None

    return Task(name="mix", verifier=PER_EXAMPLE, splits=splits, make=make,
                options={"tasks": tasks}, categories=categories, step_check=step_check)
