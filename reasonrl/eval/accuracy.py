"""Held-out answer accuracy of a policy on task examples: the in-loop check of every stage.

Answers are checked with the task's own verifier: cheap string checkers (`numeric`, `exact`,
`choice`, `countdown`) in this process, everything else (math-verify, reasoning-gym, user
verifiers) through the reward runtime's worker pool with its per-call timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from reasonrl.tasks.prompts import DEFAULT_STOP_STRINGS


@dataclass
class AccuracyResult:
    accuracy: float  # mean correctness over all (example, sample) pairs
    correct: list[list[float]]  # [example][sample]
    texts: list[list[str]]


def answer_accuracy(policy, tokenizer, examples: list[dict], *, verifier: str, prompt_fn: Callable[[dict], str],
                    k: int = 1, temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 64,
                    seed: int = 0, batch_size: int = 64, on_batch: Callable[[int], None] | None = None,
                    stop_strings: Sequence[str] = DEFAULT_STOP_STRINGS, scorer=None) -> AccuracyResult:
    """Generate `k` completions per example (temperature 0 = greedy) and score them.
    `on_batch(n_examples)` is called after each generated batch (progress bars); `stop_strings`
    end a completion (the ones a model card records, by default `</answer>`). `scorer`: a running
    reward runtime to reuse (in-loop evaluation); without one a pool starts per call."""
    import torch

    from reasonrl.sampler import generate
    from reasonrl.train.fsdp import gathered

    texts: list[list[str]] = []
    was_training = policy.training
    policy.eval()
    with torch.no_grad(), gathered(policy):  # an FSDP-sharded policy is whole while it generates
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            rollouts = generate(policy, [prompt_fn(ex) for ex in chunk], n=k, max_new_tokens=max_new_tokens,
                                temperature=temperature, top_p=top_p, seed=seed + start, tokenizer=tokenizer,
                                stop_strings=list(stop_strings) or None)
            texts += [rollouts.texts[i * k:(i + 1) * k] for i in range(len(chunk))]
            if on_batch is not None:
                on_batch(len(chunk))
    policy.train(was_training)
    correct = _check(verifier, examples, texts, scorer)
    flat = [c for row in correct for c in row]
    return AccuracyResult(sum(flat) / max(len(flat), 1), correct, texts)


def _check(verifier: str, examples: list[dict], texts: list[list[str]], scorer=None) -> list[list[float]]:
    from reasonrl.rewards import get_verifier, score

    check = get_verifier(verifier)
    if check.in_process:
        return [[float(check(t, ex) or 0.0) for t in rows] for ex, rows in zip(examples, texts)]
    flat_examples = [ex for ex, rows in zip(examples, texts) for _ in rows]
    flat_texts = [t for rows in texts for t in rows]
    if scorer is not None:
        result = scorer.score(flat_texts, flat_examples, {verifier: 1.0})
    else:
        result = score(flat_texts, flat_examples, {verifier: 1.0})
    values = iter(result.components[verifier])
    return [[float(next(values) or 0.0) for _ in rows] for rows in texts]
