"""A toy task and verifier for RL tests: the reward is reachable from a random tiny model."""

from reasonrl.tasks import Task


def digit_fraction(completion: str, example: dict) -> float:
    """Fraction of the completion's characters that are digits (0 for an empty completion)."""
    return sum(ch.isdigit() for ch in completion) / len(completion) if completion else 0.0


def echo_task(**options) -> Task:
    """Prompts 'Say numbers N', any answer; split by index parity (disjoint)."""
    def make(split, n, seed):
        start = 0 if split == "train" else 1
        return [{"id": f"echo-{i}", "prompt": f"Say numbers {i}", "answer": str(i), "meta": {}}
                for i in range(start, 2 * (n or 100), 2)][: n or 100]
    return Task("echo", "exact", ("train", "test"), make, dict(options))
