"""Code reward logic that needs no sandbox: classification, comparison, test building."""

import os

import pytest

from reasonrl.rewards import SandboxUnavailable, get_verifier
from reasonrl.rewards.code import build_runs, run_failure, same_output
from reasonrl.rewards.sandbox import hidden_paths, run_programs


def test_refuses_without_isolation(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SandboxUnavailable, match="refusing to run untrusted code"):
        run_programs({"main.py": "print(1)"}, [{"file": "main.py"}])


def test_run_failure_classification():
    base = {"exit": 1, "signal": None, "timed_out": False, "stdout": "", "stdout_truncated": False}
    assert run_failure({**base, "stderr": "Traceback\nAssertionError"}, {"assert": "x"}) is None
    assert run_failure({**base, "stderr": "Traceback\nAssertionError"}, {"input": ""}) == (
        "error", "exit code 1: AssertionError")
    assert run_failure({**base, "exit": None, "signal": 24, "stderr": ""}, {}) == ("timeout", "cpu time limit")
    assert run_failure({**base, "exit": 0, "stderr": ""}, {}) is None


def test_same_output_ignores_trailing_whitespace_only():
    assert same_output("5\n", "5")
    assert same_output("a  \nb\n\n", "a\nb")
    assert not same_output("5 6", "5\n6")
    assert not same_output(" 5", "5")


def test_build_runs():
    files, runs = build_runs("x = 1", [{"input": "3\n", "output": "4"}, {"assert": "assert x == 1"}])
    assert files == {"main.py": "x = 1", "test_1.py": "x = 1\n\nassert x == 1\n"}
    assert runs == [{"file": "main.py", "stdin": "3\n", "expect": "4"}, {"file": "test_1.py"}]


def test_code_without_block_or_tests_needs_no_sandbox():
    code = get_verifier("code", check_sandbox=False)
    assert code("no code here", {"tests": [{"input": "", "output": "1"}]}) == 0.0
    assert code("```python\nprint(1)\n```", {}) is None


def test_hidden_paths_spare_the_interpreter():
    assert "/root" in hidden_paths("/usr/bin/python3")
    assert "/root" not in hidden_paths("/root/venv/bin/python3")
    assert os.path.realpath(os.getcwd()) in hidden_paths("/usr/bin/python3")
