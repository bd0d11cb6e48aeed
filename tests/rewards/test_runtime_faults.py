"""Faults of the reward runtime become counted failures: never an exception in the trainer,
never a process left behind."""

import math
import os
import signal
import time
from multiprocessing import forkserver

import pytest

from reasonrl.rewards import RewardRuntime

UV = "tests.rewards.user_verifiers"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def restore_forkserver():
    """Later pools of this test session get a fresh forkserver, not the spawn fallback."""
    yield
    server = forkserver._forkserver
    with server._lock:
        if server._forkserver_alive_fd is not None:
            os.close(server._forkserver_alive_fd)
        server._forkserver_pid = server._forkserver_address = server._forkserver_alive_fd = None


def test_dead_forkserver_is_a_counted_failure_then_recovers(restore_forkserver):
    spec = {f"{UV}:crash": 1.0}
    with RewardRuntime(spec, num_workers=1) as rt:
        assert rt.score(["fine"], [{}]).rewards == [1.0]
        pid = forkserver._forkserver._forkserver_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # reaped elsewhere: multiprocessing's own restart check now raises
        result = rt.score(["crash", "fine", "crash", "fine"], [{}] * 4)  # each crash needs a new worker
        assert result.status[f"{UV}:crash"] == ["error", "ok", "error", "ok"]
        assert rt.score(["fine"], [{}]).rewards == [1.0]


def test_no_worker_at_all_fails_every_job_with_a_reason(monkeypatch):
    from reasonrl.rewards import pool

    def refuse(*args, **kwargs):
        raise EOFError("forkserver gone")

    with RewardRuntime({f"{UV}:crash": 1.0}, num_workers=1) as rt:
        assert rt.score(["fine"], [{}]).rewards == [1.0]
        rt._pool.workers[0].kill()
        rt._pool.workers.clear()
        monkeypatch.setattr(pool, "_Worker", refuse)
        result = rt.score(["fine", "fine"], [{}, {}])
        assert result.status[f"{UV}:crash"] == ["error", "error"]
        assert "no reward worker could start (EOFError: forkserver gone)" in result.reasons[f"{UV}:crash"][0]
        assert result.metrics[f"reward/{UV}:crash/error_frac"] == 1.0


@pytest.mark.parametrize("text", ["1e300", "-1e300", "nan", "inf", "1e7"])
def test_absurd_or_non_finite_values_are_counted_errors(runtime, text):
    name = f"{UV}:value_from_text"
    result = runtime.score([text, "0.5"], [{}, {}], spec={name: 1.0})
    assert result.status[name] == ["error", "ok"]
    assert "reward out of range" in result.reasons[name][0]
    assert result.rewards == [0.0, 0.5]
    assert all(math.isfinite(v) for v in result.metrics.values())
    assert result.metrics[f"reward/{name}/error_frac"] == 0.5


def test_verifier_children_are_killed_after_the_call(runtime, tmp_path):
    pid_file = tmp_path / "pids"
    name = f"{UV}:leave_a_child"
    result = runtime.score(["fine"], [{"pid_file": str(pid_file)}], spec={name: 1.0})
    assert result.rewards == [1.0]
    pids = [int(p) for p in pid_file.read_text().split()]
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids), pids


def test_children_of_a_timed_out_verifier_die_with_its_worker(runtime, tmp_path):
    pid_file = tmp_path / "pids"
    name = f"{UV}:leave_a_child"
    result = runtime.score(["hang"], [{"pid_file": str(pid_file)}], spec={name: 1.0}, timeout_s=2.0)
    assert result.status[name] == ["timeout"]
    pids = [int(p) for p in pid_file.read_text().split()]
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids), pids
