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
    if not math.isfinite(value):
        return "error", None, f"non-finite reward {value!r}"
    return "ok", value, None


def warm_up(warm: list) -> None:
    """Run each (verifier, completion, example) once; results are discarded."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    for verifier, completion, example in warm:
        evaluate(verifier, completion, example)


def worker_main(conn, warm: list) -> None:
    # Ctrl-C goes to the whole process group; the trainer decides, workers just wait.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
            conn.send((job_id, *evaluate(verifier, completion, example)))
