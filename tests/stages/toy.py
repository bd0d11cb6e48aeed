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



def length_parity(completion: str, example: dict) -> float:
    """1 when the completion's length in characters has the parity the answer names (about half of
    a random model's completions are "correct")."""
    return 1.0 if len(completion) % 2 == int(example["answer"]) else 0.0


def parity_task(**options) -> Task:
    """Prompts 'Say something N' whose answer is N's parity (checked by `length_parity`); split by
    index modulo 4: 0, 1 train, 2, 3 test (disjoint)."""
    def make(split, n, seed):
        low = 0 if split == "train" else 2
        return [{"id": f"parity-{i}", "prompt": f"Say something {i}", "answer": str(i % 2), "meta": {}}
                for i in range(4 * (n or 100)) if low <= i % 4 < low + 2][: n or 100]
    return Task("parity", "tests.stages.toy:length_parity", ("train", "test"), make, dict(options))
