"""Row bookkeeping for the sampler: the Rollouts layout, prompt padding, live rows, stop checks.

The caches themselves come from the policy's `make_cache`; this module only decides which batch
rows are still worth computing and where each generated token goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch


@dataclass
class Rollouts:
    """Sampler output (docs/design.md). Rows are prompt-major: row = prompt_index * n + sample_index.

    `logprobs[r][t]` is log_softmax(logits / temperature) of token `completion_ids[r][t]` over the full
    vocabulary, before top-k / top-p (temperature 0 means greedy and uses temperature 1 here).
    `stats` holds throughput numbers and, for speculative decoding, `acceptance_rate`.
    """

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    completion_lengths: list[int]
    finish_reasons: list[str]
    logprobs: list[list[float]]
    group: list[int]
    texts: list[str] | None = None
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.completion_ids)


def encode_prompts(prompts: Sequence, tokenizer=None) -> list[list[int]]:
    """Token-id lists as given, or strings encoded with `tokenizer` (no extra special tokens)."""
    out = []
    for p in prompts:
        if isinstance(p, str):
            if tokenizer is None:
                raise ValueError("string prompts need tokenizer=...")
            p = tokenizer.encode(p, add_special_tokens=False)
        out.append([int(t) for t in p])
    if any(len(p) == 0 for p in out):
        raise ValueError("empty prompt: every prompt needs at least one token")
    return out


def right_pad(prompts: list[list[int]], device, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, T_max] right-padded ids and [B] lengths. Pads never influence real tokens (causal)."""
    lengths = torch.tensor([len(p) for p in prompts], dtype=torch.long)
    ids = torch.full((len(prompts), int(lengths.max())), pad_id, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, : len(p)] = torch.tensor(p, dtype=torch.long)
    return ids.to(device), lengths.to(device)


def resolve_stop_ids(model, tokenizer, stop_token_ids, ignore_eos: bool) -> set[int]:
    """Explicit stop ids plus the end-of-sequence id(s), unless `ignore_eos`."""
    stops = set(int(t) for t in (stop_token_ids or ()))
    if ignore_eos:
        return stops
    eos = getattr(tokenizer, "eos_token_id", None) if tokenizer is not None else None
    if eos is None:
        eos = getattr(getattr(model, "config", None), "eos_token_id", None)
    if isinstance(eos, int):
        stops.add(eos)
    elif eos is not None:
        stops.update(int(t) for t in eos)
    return stops


class StopChecker:
    """Decides per row whether the newest token ends it ("stop") or the budget is spent ("length").

    Stop strings are matched on the decoded tail of the completion: a window of recent tokens long
    enough to contain the longest stop string, so the cost per step does not grow with length.
    """

    def __init__(self, stop_ids: set[int], stop_strings=None, tokenizer=None, max_new_tokens: int = 0):
        self.stop_ids = stop_ids
        self.stop_strings = [s for s in (stop_strings or ()) if s]
        if self.stop_strings and tokenizer is None:
            raise ValueError("stop_strings need tokenizer=...")
        self.tokenizer = tokenizer
        self.window = max((len(s) for s in self.stop_strings), default=0) + 4
        self.max_new_tokens = max_new_tokens

    def __call__(self, tokens: list[int]) -> str | None:
        if tokens and tokens[-1] in self.stop_ids:
            return "stop"
        if self.stop_strings and self._string_stop(tokens):
            return "stop"
        if len(tokens) >= self.max_new_tokens:
            return "length"
        return None

    def _string_stop(self, tokens: list[int]) -> bool:
        tail = self.tokenizer.decode(tokens[-self.window :], skip_special_tokens=False)
        return any(s in tail for s in self.stop_strings)


class LiveRows:
    """Maps cache rows to output rows and decides when finished rows are dropped from the cache.

    Dropping rows (`cache.keep`) copies the cache, so finished rows are carried along until they make
    up `compact_fraction` of the batch; their tokens are ignored meanwhile.
    """

    def __init__(self, n_rows: int, device, compact_fraction: float = 0.25):
        self.rows = list(range(n_rows))  # cache row i -> output row self.rows[i]
        self.active = [True] * n_rows
        self.device = device
        self.compact_fraction = compact_fraction

    def finish(self, cache_row: int) -> None:
        self.active[cache_row] = False

    @property
    def n_active(self) -> int:
        return sum(self.active)

    def compaction(self) -> torch.Tensor | None:
        """Cache rows to keep when it is worth compacting now, else None (and no state change)."""
        dead = len(self.rows) - self.n_active
        if dead == 0 or self.n_active == 0 or dead < self.compact_fraction * len(self.rows):
            return None
        keep = [i for i, a in enumerate(self.active) if a]
        self.rows = [self.rows[i] for i in keep]
        self.active = [True] * len(keep)
        return torch.tensor(keep, dtype=torch.long, device=self.device)


def assemble(prompts, n, completions, logprobs, reasons, tokenizer=None, stats=None) -> Rollouts:
    """Rollouts in prompt-major order from per-row lists."""
    group = [i // n for i in range(len(prompts) * n)]
    texts = None
    if tokenizer is not None:
        texts = tokenizer.batch_decode(completions, skip_special_tokens=True)
    return Rollouts(
        prompt_ids=[list(prompts[g]) for g in group],
        completion_ids=completions,
        completion_lengths=[len(c) for c in completions],
        finish_reasons=reasons,
        logprobs=logprobs,
        group=group,
        texts=texts,
        stats=stats or {},
    )
