"""Rollout generation on token ids: `generate(model, prompts, ...) -> Rollouts`.

Importing this package costs torch only; transformers and vllm are imported where used.
"""

from reasonrl.sampler.batching import Rollouts
from reasonrl.sampler.engine import SamplingParams, generate

__all__ = ["Rollouts", "SamplingParams", "generate"]
