"""Held-out answer accuracy of a policy on task examples: the in-loop check of every stage.

Answers are checked with the task's own verifier in this process, so only verifiers that cannot
hang belong here (`numeric`, `exact`, `choice`, the countdown checker); full benchmark evaluation
goes through the reward runtime with its timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass
class AccuracyResult:
    accuracy: float  # mean correctness over all (example, sample) pairs
    correct: list[list[float]]  # [example][sample]
    texts: list[list[str]]


def answer_accuracy(policy, tokenizer, examples: list[dict], *, verifier: str, prompt_fn: Callable[[dict], str],
                    k: int = 1, temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 64,
                    seed: int = 0, batch_size: int = 64) -> AccuracyResult:
    """Generate `k` completions per example (temperature 0 = greedy) and score them."""
    import torch

    from reasonrl.rewards import get_verifier
    from reasonrl.sampler import generate

    check = get_verifier(verifier)
    correct: list[list[float]] = []
    texts: list[list[str]] = []
    was_training = policy.training
    policy.eval()
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            rollouts = generate(policy, [prompt_fn(ex) for ex in chunk], n=k, max_new_tokens=max_new_tokens,
                                temperature=temperature, top_p=top_p, seed=seed + start, tokenizer=tokenizer,
                                stop_strings=["</answer>"])
            for i, example in enumerate(chunk):
                rows = rollouts.texts[i * k:(i + 1) * k]
                texts.append(rows)
                correct.append([float(check(text, example) or 0.0) for text in rows])
    policy.train(was_training)
    flat = [c for row in correct for c in row]
    return AccuracyResult(sum(flat) / max(len(flat), 1), correct, texts)
