"""Code execution reward: the last fenced python block, run in the sandbox against the
example's tests (layouts: reasonrl.rewards.code_tests).

Every test runs alone: the sandbox gives each run a fresh directory holding only the program
(and, for an assert test, its runner), and expected outputs never enter the sandbox — stdout
tests are compared there by digest, assert tests are judged here (reasonrl.rewards.asserts).
All runs of one completion share one wall-clock budget (`total_s`).
"""

from __future__ import annotations

import signal
import subprocess

from reasonrl.rewards._sandbox_init import output_digest, same_output
from reasonrl.rewards.asserts import judge, plan_assert, runner_source
from reasonrl.rewards.base import RewardFailure
from reasonrl.rewards.code_tests import MalformedTest, normalise_tests
from reasonrl.rewards.extract import last_code_block
from reasonrl.rewards.sandbox import Limits, run_programs

RUNNER_FILE = "_check.py"

__all__ = ["build_runs", "code_reward", "run_failure", "same_output"]


def build_runs(tests: list[dict]) -> tuple[list[dict], list[dict | None]]:
    """One run per normalised test and, per test, the assert plan (None for stdin tests).
    The program itself is the shared file main.py."""
    runs, plans = [], []
    for test in tests:
        if "assert" in test:
            plan = plan_assert(test["assert"])
            runs.append({"file": RUNNER_FILE, "files": {RUNNER_FILE: runner_source(plan)}})
            plans.append(plan)
        else:
            runs.append({"file": "main.py", "stdin": test["input"],
                         "expect_sha": output_digest(test["output"])})
            plans.append(None)
    return runs, plans


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().split("\n") if line.strip()]
    return lines[-1].strip()[:300] if lines else ""


def run_failure(result: dict, test: dict) -> tuple[str, str] | None:
    """(kind, reason) when a run ended without a verdict of its own: a time limit
    ("timeout"), another limit, a signal or an uncaught exception ("error"). None when the
    program ran to completion (its verdict is a plain right or wrong answer)."""
    err = _last_line(result["stderr"])
    if result["timed_out"]:
        return "timeout", "wall-clock limit" + (" (budget for all tests)" if result.get("budget_cut") else "")
    if result["signal"] == signal.SIGXCPU:
        return "timeout", "cpu time limit"
    if result["signal"] is not None:
        return "error", f"killed by signal {result['signal']}"
    if result["exit"] == 0:
        return ("error", "output size limit") if result["stdout_truncated"] else None
    for marker, what in (("MemoryError", "memory limit"), ("[Errno 27]", "file size limit"),
                         ("BlockingIOError", "process limit")):
        if marker in err:
            return "error", f"{what}: {err}"
    return "error", f"exit code {result['exit']}: {err}"


def verdict(result: dict, test: dict, plan: dict | None) -> tuple[bool, tuple[str, str] | None]:
    """(passed, failure kind and reason when it was not a plain wrong answer)."""
    failure = run_failure(result, test)
    if failure is not None or result["exit"] != 0:
        return False, failure
    if plan is None:
        return same_output(result["stdout"], test["output"]), None
    ok, why = judge(plan, result.get("report", ""))
    if not ok and why and why.startswith("error: "):
        return False, ("error", why[len("error: "):])
    return ok, None


def code_reward(completion: str, example: dict, partial: bool = False, cpu_s: float = 2.0,
                wall_s: float = 4.0, memory_mb: int = 512, max_tests: int = 64,
                total_s: float = 10.0) -> float | None:
    """1.0 when every test passes (partial=True: the fraction passed); 0.0 for a wrong answer
    or no code block. A program that crashes, hits a limit or is killed raises RewardFailure
    (status timeout/error with the reason) when that decides the outcome: with partial=False
    the first failing test, with partial=True only when no test passed. A malformed test
    (no expectation) is an error, never a pass."""
    if not example.get("tests"):
        return None
    try:
        tests = normalise_tests(example["tests"])[:max_tests]
        runs, plans = build_runs(tests)
    except MalformedTest as exc:
        raise RewardFailure("error", f"malformed tests: {exc}") from None
    code = last_code_block(completion)
    if code is None:
        return 0.0
    limits = Limits(cpu_s=cpu_s, wall_s=wall_s, memory_mb=memory_mb, total_s=total_s)
    try:
        outcome = run_programs({"main.py": code}, runs, limits, stop_on_failure=not partial)
    except subprocess.TimeoutExpired:
        raise RewardFailure("timeout", "sandbox did not finish in its budget") from None
    judged = [verdict(r, t, p) for r, t, p in zip(outcome["results"], tests, plans)]
    passes = [ok for ok, _ in judged]
    if len(passes) == len(tests) and all(passes):
        return 1.0
    if partial and any(passes):
        return sum(passes) / len(tests)
    if False not in passes:  # stopped before the end: the shared budget ran out
        raise RewardFailure("timeout", f"test {len(passes)}: time budget of {total_s:g} s "
                                       "for all tests exhausted")
    first = passes.index(False)
    failure = judged[first][1]
    if failure is not None:
        raise RewardFailure(failure[0], f"test {first}: {failure[1]}")
    return 0.0
