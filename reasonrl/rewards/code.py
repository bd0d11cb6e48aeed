"""Code execution reward: the last fenced python block, run in the sandbox against the
example's tests (`{"input", "output"}` stdin/stdout pairs or `{"assert": "..."}` lines)."""

from __future__ import annotations

import signal
import subprocess

from reasonrl.rewards._sandbox_init import same_output
from reasonrl.rewards.base import RewardFailure
from reasonrl.rewards.extract import last_code_block
from reasonrl.rewards.sandbox import Limits, run_programs


def build_runs(code: str, tests: list[dict]) -> tuple[dict[str, str], list[dict]]:
    """Files and runs: one shared main.py for stdin tests, one file per assert test. `expect`
    lets the sandbox stop at the first wrong answer when only all-pass counts."""
    files = {"main.py": code}
    runs = []
    for i, test in enumerate(tests):
        if "assert" in test:
            name = f"test_{i}.py"
            files[name] = f"{code}\n\n{test['assert']}\n"
            runs.append({"file": name})
        else:
            runs.append({"file": "main.py", "stdin": str(test.get("input", "")),
                         "expect": str(test.get("output", ""))})
    return files, runs


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().split("\n") if line.strip()]
    return lines[-1].strip()[:300] if lines else ""


def run_failure(result: dict, test: dict) -> tuple[str, str] | None:
    """(kind, reason) when a run ended without a verdict of its own: a time limit
    ("timeout"), another limit, a signal or an uncaught exception ("error"). None when the
    program ran to completion, or failed an assert test's assertion (a plain wrong answer)."""
    err = _last_line(result["stderr"])
    if result["timed_out"]:
        return "timeout", "wall-clock limit"
    if result["signal"] == signal.SIGXCPU:
        return "timeout", "cpu time limit"
    if result["signal"] is not None:
        return "error", f"killed by signal {result['signal']}"
    if result["exit"] == 0:
        return ("error", "output size limit") if result["stdout_truncated"] else None
    if "assert" in test and err.startswith("AssertionError"):
        return None
    for marker, what in (("MemoryError", "memory limit"), ("[Errno 27]", "file size limit"),
                         ("BlockingIOError", "process limit")):
        if marker in err:
            return "error", f"{what}: {err}"
    return "error", f"exit code {result['exit']}: {err}"


def passed(result: dict, test: dict) -> bool:
    if result["exit"] != 0 or result["timed_out"] or result["stdout_truncated"]:
        return False
    return "assert" in test or same_output(result["stdout"], str(test.get("output", "")))


def code_reward(completion: str, example: dict, partial: bool = False, cpu_s: float = 2.0,
                wall_s: float = 4.0, memory_mb: int = 512, max_tests: int = 64) -> float | None:
    """1.0 when every test passes (partial=True: the fraction passed); 0.0 for a wrong answer
    or no code block. A program that crashes, hits a limit or is killed raises RewardFailure
    (status timeout/error with the reason) when that decides the outcome: with partial=False
    the first failing test, with partial=True only when no test passed."""
    tests = list(example.get("tests") or [])[:max_tests]
    if not tests:
        return None
    code = last_code_block(completion)
    if code is None:
        return 0.0
    files, runs = build_runs(code, tests)
    limits = Limits(cpu_s=cpu_s, wall_s=wall_s, memory_mb=memory_mb)
    try:
        results = run_programs(files, runs, limits, stop_on_failure=not partial)
    except subprocess.TimeoutExpired:
        raise RewardFailure("timeout", "sandbox did not finish in its budget") from None
    verdicts = [passed(r, t) for r, t in zip(results, tests)]
    if len(verdicts) == len(tests) and all(verdicts):
        return 1.0
    if partial and any(verdicts):
        return sum(verdicts) / len(tests)
    first = verdicts.index(False)
    failure = run_failure(results[first], tests[first])
    if failure is not None:
        raise RewardFailure(failure[0], f"test {first}: {failure[1]}")
    return 0.0
