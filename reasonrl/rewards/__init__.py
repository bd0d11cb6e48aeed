"""Rule-based rewards: pure verifiers `(completion, example) -> float | None`, their weighted
composition, and a runtime that runs them in worker processes with per-call timeouts.

Public API (docs/rewards.md): get_verifier, score, RewardRuntime, ScoreResult, extract_answer,
load_function, RewardFailure, SandboxUnavailable. Importing this package is light: math-verify,
sympy and reasoning-gym load only where a verifier needs them.
"""

from reasonrl.rewards.base import BUILTINS, RewardFailure, Verifier, get_verifier, load_function
from reasonrl.rewards.extract import extract_answer
from reasonrl.rewards.runtime import RewardRuntime, ScoreResult, parse_spec, score
from reasonrl.rewards.sandbox import SandboxUnavailable

__all__ = [
    "BUILTINS", "RewardFailure", "RewardRuntime", "SandboxUnavailable", "ScoreResult", "Verifier",
    "extract_answer", "get_verifier", "load_function", "parse_spec", "score",
]
