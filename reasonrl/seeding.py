"""Per-step randomness: every random draw of a run derives from (seed, step, stream), so a
resumed run draws exactly what an uninterrupted one would. Bottom floor."""

from __future__ import annotations

import hashlib


def seed_for(seed: int, step: int, stream: str = "default") -> int:
    """A 63-bit seed that depends only on (seed, step, stream); a hash rather than seed + step so
    neighbouring runs and streams never share sequences."""
    digest = hashlib.sha256(f"reasonrl:{seed}:{step}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def step_generator(seed: int, step: int, stream: str = "default", device="cpu"):
    """A torch.Generator seeded with `seed_for(seed, step, stream)`."""
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(seed_for(seed, step, stream))
    return gen
