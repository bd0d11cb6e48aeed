"""Code reward logic that needs no sandbox: classification, comparison, test building."""

import os

import pytest

from reasonrl.rewards import SandboxUnavailable, get_verifier
from reasonrl.rewards.code import build_runs, run_failure, same_output
from reasonrl.rewards.sandbox import filesystem_view, program_python, run_programs


def test_refuses_without_isolation(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SandboxUnavailable, match="refusing to run untrusted code"):
        run_programs({"main.py": "print(1)"}, [{"file": "main.py"}])


def test_run_failure_classification():
    base = {"exit": 1, "signal": None, "timed_out": False, "stdout": "", "stdout_truncated": False}
    assert run_failure({**base, "stderr": "Traceback\nAssertionError"}, {"input": ""}) == (
        "error", "exit code 1: AssertionError")
    assert run_failure({**base, "exit": None, "signal": 24, "stderr": ""}, {}) == ("timeout", "cpu time limit")
    assert run_failure({**base, "exit": 0, "stderr": ""}, {}) is None


def test_same_output_ignores_trailing_whitespace_only():
    assert same_output("5\n", "5")
    assert same_output("a  \nb\n\n", "a\nb")
    assert not same_output("5 6", "5\n6")
    assert not same_output(" 5", "5")


def test_build_runs_keep_expectations_out_of_the_sandbox():
    runs, plans = build_runs([{"input": "3\n", "output": "forty-two"}, {"assert": "assert x == 1"}])
    assert runs[0]["stdin"] == "3\n" and "forty" not in repr(runs[0])  # only a digest goes in
    assert plans[0] is None and plans[1]["probes"] == ["x"] and plans[1]["checks"] == ["_p0 == 1"]
    assert "== 1" not in repr(runs[1])  # the runner evaluates `x`; the check stays here


def test_code_without_block_or_tests_needs_no_sandbox():
    code = get_verifier("code", check_sandbox=False)
    assert code("no code here", {"tests": [{"input": "", "output": "1"}]}) == 0.0
    assert code("```python\nprint(1)\n```", {}) is None


def test_filesystem_view_is_an_allow_list():
    python = program_python()
    if python is None:
        pytest.skip("no interpreter an unprivileged uid can run")
    expose, hide = filesystem_view(python)
    assert python in expose and "/" not in expose and "/usr" not in expose
    assert not any(p in expose for p in ("/root", "/home", "/tmp", "/etc", os.getcwd()))
    package = os.path.dirname(os.path.dirname(os.path.abspath(__import__("reasonrl").__file__)))
    assert not any(package == p or package.startswith(p + "/") for p in expose)
    assert any(p.endswith(("site-packages", "dist-packages")) for p in hide)
