"""Per-row random streams, so a completion's draws depend only on its prompt's seed and its
sample index, never on which other prompts share the batch (or the rank).

    gens = RowGenerators([seed_a, seed_b], n=4, device)   # one seed per prompt, 4 samples each
    gens.track(live)                                      # the decode loop's cache-row -> row map
    u = uniforms(gens, rows, device)                      # (rows, 1), row i from its own stream

Each output row owns a generator; a finished row still carried in the cache draws from its own
stream only, so when the cache is compacted changes nothing for the rows still decoding.
"""

from __future__ import annotations

from typing import Sequence

import torch

from reasonrl.seeding import seed_for


class RowGenerators:
    def __init__(self, prompt_seeds: Sequence[int], n: int, device):
        self.generators = [torch.Generator(device=device).manual_seed(seed_for(int(s), k, "row"))
                           for s in prompt_seeds for k in range(n)]
        self.rows: list[int] = list(range(len(self.generators)))  # cache row i -> output row

    def track(self, live) -> None:
        """Follow `live.rows` (a LiveRows), which the decode loop compacts in place of a copy."""
        self._live = live

    def current_rows(self) -> list[int]:
        live = getattr(self, "_live", None)
        return live.rows if live is not None else self.rows


def uniforms(generator, rows: int, device) -> torch.Tensor:
    """(rows, 1) uniforms in [0, 1): one call on a shared generator (the batch stream, as it always
    was), or one draw per row from that row's own generator."""
    if isinstance(generator, RowGenerators):
        owners = generator.current_rows()
        if len(owners) != rows:
            raise RuntimeError(f"{rows} rows to draw for, {len(owners)} tracked")
        draws = [torch.rand(1, generator=generator.generators[r], device=device) for r in owners]
        return torch.stack(draws)  # (rows, 1)
    return torch.rand(rows, 1, generator=generator, device=device)
