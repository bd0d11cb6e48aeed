"""Code execution reward: the last fenced python block, run in the sandbox against the
example's tests (`{"input", "output"}` stdin/stdout pairs or `{"assert": "..."}` lines)."""

from __future__ import annotations

import signal
import subprocess

from reasonrl.rewards.base import RewardFailure
from reasonrl.rewards.extract import last_code_block
from reasonrl.rewards.sandbox import Limits, run_programs


def same_output(actual: str, expected: str) -> bool:
    """Equal up to trailing whitespace on each line and trailing blank lines."""
    def lines(text):
        return [line.rstrip() for line in text.strip("\n").rstrip().split("\n")]
    return lines(actual) == lines(expected)


def build_runs(code: str, tests: list[dict]) -> tuple[dict[str, str], list[dict]]:
    """Files and runs: one shared main.py for stdin tests, one file per assert test."""
    files = {"main.py": code}
    runs = []
    for i, test in enumerate(tests):
        if "assert" in test:
            name = f"test_{i}.py"
            files[name] = f"{code}\n\n{test['assert']}\n"
            runs.append({"file": name})
        else:
            runs.append({"file": "main.py", "stdin": str(test.get("input", ""))})
    return files, runs


def limit_violation(result: dict) -> tuple[str, str] | None:
    """(kind, reason) when a run ended by a limit rather than by a verdict of its own."""
    err = result["stderr"]
    if result["timed_out"]:
        return "timeout", "wall-clock limit"
    if result["signal"] == signal.SIGXCPU or result["signal"] == signal.SIGKILL:
        return "timeout", f"cpu time limit (signal {result['signal']})"
    if result["signal"] is not None:
        return "error", f"killed by signal {result['signal']}"
    if "MemoryError" in err:
        return "error", "memory limit"
    if "[Errno 27]" in err or result["stdout_truncated"]:
        return "error", "output/file size limit"
    if "BlockingIOError" in err or "Resource temporarily unavailable" in err:
        return "error", "process limit"
    if result["exit"] == 111 and "sandbox setup failed" in err:
        return "error", err[-300:]
    return None


def passed(result: dict, test: dict) -> bool:
    if result["exit"] != 0 or result["timed_out"]:
        return False
    return "assert" in test or same_output(result["stdout"], str(test.get("output", "")))


def code_reward(completion: str, example: dict, partial: bool = False, cpu_s: float = 2.0,
                wall_s: float = 4.0, memory_mb: int = 512, max_tests: int = 64) -> float | None:
    """1.0 when every test passes (partial=True: the fraction passed). No code block: 0.0.
    A run stopped by a limit (time, memory, output, processes, signal) raises RewardFailure
    when it decides the outcome, so limits are counted rather than silently scored 0."""
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
    if all(verdicts) and len(verdicts) == len(tests):
        return 1.0
    violations = [limit_violation(r) for r, ok in zip(results, verdicts) if not ok]
    if violations and all(violations) and (not partial or not any(verdicts)):
        kind, reason = violations[0]
        raise RewardFailure(kind, reason)
    return sum(verdicts) / len(tests) if partial else 0.0
