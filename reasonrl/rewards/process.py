"""The `process` reward: 1.0 when the task's step check finds every step of the chain of thought
right, 0.0 when one is false, None when nothing in the completion is checkable.

Off by default (`rewards: {process: 0.2}` turns it on). The example names its step check in
`meta["step_check"]` (the arithmetic task sets "arithmetic"), the way `accuracy` finds the
task's answer checker through `meta["verifier"]`; the names are reasonrl.tasks.process.STEP_CHECKS
or a `module:function`.
"""

from __future__ import annotations


def process_reward(completion: str, example: dict) -> float | None:
    """The example's step check as a reward; None for an example without one."""
    from reasonrl.tasks.process import resolve_step_check

    name = (example.get("meta") or {}).get("step_check")
    if not name:
        return None
    verdict = resolve_step_check(str(name))(completion, example)
    return None if verdict is None else float(verdict)
