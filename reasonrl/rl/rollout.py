"""Prompts -> groups of sampled completions -> rewards -> one padded training batch."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from reasonrl.sampler.backends import Sampler
from reasonrl.tasks.prompts import PromptSpec


class Scorer(Protocol):
    """What rollouts are scored with (the reward runtime): rewards plus per-verifier components."""

    def score(self, completions: list[str], examples: list[dict], spec: dict | None = None,
              completion_lengths: list[int] | None = None) -> Any: ...


@dataclass
class RolloutBatch:
    """One step's rollouts: rows prompt-major (row = prompt_index * G + sample_index)."""

    examples: list[dict]  # one per row
    prompts: list[str]  # rendered prompt text per row
    texts: list[str]
    ids: torch.Tensor  # (N, L) prompt + completion, right-padded
    mask: torch.Tensor  # (N, L-1) 1 where target ids[:, t+1] is a completion token
    old_logp: torch.Tensor  # (N, L-1) sampler log-probs at the completion targets
    lengths: list[int]
    truncated: list[bool]
    rewards: torch.Tensor  # (N,)
    components: dict[str, list] = field(default_factory=dict)
    reward_metrics: dict[str, float] = field(default_factory=dict)
    gen_tokens_per_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase (time/generate, time/reward)

    def __len__(self) -> int:
        return len(self.texts)


def pad_batch(prompt_ids: list[list[int]], completion_ids: list[list[int]], logprobs: list[list[float]],
              pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded (ids, completion mask, old log-probs) aligned with next-token targets."""
    n = len(prompt_ids)
    L = max(len(p) + len(c) for p, c in zip(prompt_ids, completion_ids))
    ids = torch.full((n, L), pad_id, dtype=torch.long)
    mask = torch.zeros(n, L - 1)
    old = torch.zeros(n, L - 1)
    for r, (p, c, lp) in enumerate(zip(prompt_ids, completion_ids, logprobs)):
        ids[r, :len(p) + len(c)] = torch.tensor(p + c, dtype=torch.long)
        start = len(p) - 1  # target index of the first completion token
        mask[r, start:start + len(c)] = 1.0
        old[r, start:start + len(c)] = torch.tensor(lp, dtype=torch.float32)
    return ids, mask, old


def collect(sampler: Sampler, scorer: Scorer, tokenizer, examples: list[dict], *, group_size: int,
            prompt: PromptSpec, sampling: dict, seed: int, reward_spec: dict) -> RolloutBatch:
    """Sample `group_size` completions per example and score them (timed: time/generate, time/reward)."""
    prompts = [prompt.render(ex, tokenizer) for ex in examples]
    t0 = time.perf_counter()
    ro = sampler.generate(prompts, n=group_size, seed=seed, **sampling)
    t1 = time.perf_counter()
    rows = [{**examples[g], "prefill": prompt.prefill} if prompt.prefill else examples[g] for g in ro.group]
    scored = scorer.score(ro.texts, rows, reward_spec, completion_lengths=ro.completion_lengths)
    timings = {"time/generate": t1 - t0, "time/reward": time.perf_counter() - t1}
    ids, mask, old = pad_batch(ro.prompt_ids, ro.completion_ids, ro.logprobs, tokenizer.pad_token_id)
    return RolloutBatch(rows, [prompts[g] for g in ro.group], ro.texts, ids, mask, old, list(ro.completion_lengths),
                        [r == "length" for r in ro.finish_reasons], torch.tensor(scored.rewards, dtype=torch.float32),
                        dict(scored.components), dict(scored.metrics), float(ro.stats.get("tokens_per_s", 0.0)),
                        timings)


def select_rows(batch: RolloutBatch, rows: list[int]) -> RolloutBatch:
    """The sub-batch of the given rows (used to drop groups with no learning signal)."""
    index = torch.tensor(rows, dtype=torch.long)
    pick = lambda xs: [xs[i] for i in rows]  # noqa: E731
    return RolloutBatch(pick(batch.examples), pick(batch.prompts), pick(batch.texts), batch.ids[index], batch.mask[index],
                        batch.old_logp[index], pick(batch.lengths), pick(batch.truncated), batch.rewards[index],
                        {k: pick(v) for k, v in batch.components.items()}, batch.reward_metrics,
                        batch.gen_tokens_per_s, batch.timings)


def concat(batches: list[RolloutBatch], pad_id: int) -> RolloutBatch:
    """Join rollout batches (dynamic sampling rounds) into one, re-padding to the longest row."""
    if len(batches) == 1:
        return batches[0]
    L = max(b.ids.shape[1] for b in batches)
    ids = torch.cat([torch.nn.functional.pad(b.ids, (0, L - b.ids.shape[1]), value=pad_id) for b in batches])
    mask = torch.cat([torch.nn.functional.pad(b.mask, (0, L - 1 - b.mask.shape[1])) for b in batches])
    old = torch.cat([torch.nn.functional.pad(b.old_logp, (0, L - 1 - b.old_logp.shape[1])) for b in batches])
    components: dict[str, list[Any]] = {k: [v for b in batches for v in b.components[k]] for k in batches[0].components}
    return RolloutBatch([e for b in batches for e in b.examples], [p for b in batches for p in b.prompts],
                        [t for b in batches for t in b.texts], ids, mask, old,
                        [n for b in batches for n in b.lengths], [t for b in batches for t in b.truncated],
                        torch.cat([b.rewards for b in batches]), components, batches[0].reward_metrics,
                        sum(b.gen_tokens_per_s for b in batches) / len(batches),
                        {k: sum(b.timings.get(k, 0.0) for b in batches) for k in batches[0].timings})
