"""The reward worker process: receives batches of jobs, answers one result per job.

Kept free of heavy imports so the forkserver can preload it cheaply; verifier modules (and
math-verify / sympy) are imported during warm-up, before the worker reports ready, so the first
job's timeout does not pay for imports.
"""

from __future__ import annotations

import logging
import math
import os
import signal

from reasonrl.rewards.base import RewardFailure
from reasonrl.rewards.procs import become_subreaper, children, kill_descendants, reap_children

# Rewards are O(1) (R1's are in [-1, 2]); a value beyond this is a verifier bug, and letting it
# through would swamp the batch's advantages (and 1e300 overflows the reward std).
MAX_ABS_VALUE = 1e6


def evaluate(verifier, completion: str, example: dict) -> tuple[str, float | None, str | None]:
    """(status, value, reason) for one call; status is ok | none | timeout | error.
    Never raises: a verifier's exception becomes an "error" with its message as the reason."""
    try:
        value = verifier(completion, example)
    except RewardFailure as failure:
        return failure.kind, None, failure.reason
    except Exception as exc:  # any verifier bug must not reach the trainer
        return "error", None, f"{type(exc).__name__}: {exc}"[:500]
    if value is None:
        return "none", None, None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
        return "error", None, f"reward out of range: {value!r}"[:200]
    return "ok", float(value), None


def warm_up(warm: list) -> None:
    """Run each (verifier, completion, example) once; results are discarded."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    for verifier, completion, example in warm:
        evaluate(verifier, completion, example)


def worker_main(conn, warm: list) -> None:
    # Ctrl-C goes to the whole process group; the trainer decides, workers just wait.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    become_subreaper()
    warm_up(warm)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        for job_id, verifier, completion, example in batch:
            outcome = evaluate(verifier, completion, example)
            end_leftovers()
            conn.send((job_id, *outcome))


def end_leftovers() -> None:
    """Kill whatever a verifier started and left running (cheap when there is nothing)."""
    if children(os.getpid()):
        kill_descendants(os.getpid())
        reap_children()
