"""Adversarial programs against the code sandbox. After each one: the trainer (this process)
and the reward workers are alive, no file outside the sandbox changed, no sandbox process is
left, and the reward is the failure value with a reason."""

import os
import shutil
import socket
import tempfile
import textwrap

import pytest

from reasonrl.rewards import RewardRuntime, get_verifier
from reasonrl.rewards.sandbox import UID_BASE, UID_COUNT, sandbox_check

pytestmark = pytest.mark.skipif(sandbox_check() is not None,
                                reason=f"sandbox unavailable here: {sandbox_check()}")


def completion(code: str) -> str:
    return f"<think>plan</think>\n```python\n{textwrap.dedent(code)}\n```"


def sandbox_processes() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/status") as fh:
                uid = next(int(l.split()[1]) for l in fh if l.startswith("Uid:"))
        except (OSError, StopIteration, ValueError):
            continue
        if UID_BASE <= uid < UID_BASE + UID_COUNT:
            found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def code_runtime():
    rt = RewardRuntime({"code": {"weight": 1.0, "cpu_s": 1.0, "wall_s": 2.0}}, timeout_s=30.0,
                       num_workers=2)
    yield rt
    rt.close()


@pytest.fixture
def outside(tmp_path):
    """World-writable directories outside the sandbox holding a sentinel file: one under /tmp
    and one on the root filesystem, so only the sandbox's mounts protect them, not file modes."""
    dirs = [tmp_path, tempfile.mkdtemp(prefix="reasonrl-probe-", dir="/opt" if os.path.isdir("/opt") else "/")]
    for d in dirs:
        os.chmod(d, 0o777)
        with open(os.path.join(d, "sentinel"), "w") as fh:
            fh.write("untouched")
        os.chmod(os.path.join(d, "sentinel"), 0o666)
    yield [str(d) for d in dirs]
    shutil.rmtree(dirs[1], ignore_errors=True)


def contained(runtime, code: str, tests=None, outside_dirs=(), spec=None):
    """Score `code`, check every containment property, return (status, reason)."""
    workers = [w.proc.pid for w in runtime._pool.workers] if runtime._pool else None
    before = {d: sorted(os.listdir(d)) for d in outside_dirs}
    result = runtime.score([completion(code)], [{"tests": tests or [{"input": "", "output": "ok"}]}],
                           spec=spec)
    assert os.path.exists(f"/proc/{os.getpid()}")
    if workers is not None:
        assert [w.proc.pid for w in runtime._pool.workers] == workers  # none died or hung
    for d in outside_dirs:
        assert sorted(os.listdir(d)) == before[d]
        with open(os.path.join(d, "sentinel")) as fh:
            assert fh.read() == "untouched"
    assert sandbox_processes() == []
    status, reason = result.status["code"][0], result.reasons["code"][0]
    assert result.rewards == [0.0] and status in ("timeout", "error") and reason, (status, reason)
    return status, reason


def test_correct_program_passes(code_runtime):
    tests = [{"input": "2 3\n", "output": "5"}, {"input": "10 -4\n", "output": "6\n"},
             {"assert": "assert add(2, 2) == 4"}]
    # assert tests run the program with the assertion appended, stdin empty
    code = "import sys\ndef add(a, b):\n    return a + b\ndata = sys.stdin.read().split()\nif data:\n    print(add(*map(int, data)))"
    result = code_runtime.score([completion(code)], [{"tests": tests}])
    assert result.rewards == [1.0], result.reasons
    wrong = code.replace("a + b", "a * b")  # passes only add(2, 2) == 4
    result = code_runtime.score([completion(wrong)], [{"tests": tests}])
    assert result.rewards == [0.0] and result.status["code"] == ["ok"]
    partial = get_verifier("code", partial=True)
    assert partial(completion(wrong), {"tests": tests}) == pytest.approx(1 / 3)


def test_fork_bomb(code_runtime):
    status, _ = contained(code_runtime, """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """)
    assert status == "timeout"


def test_memory_bomb(code_runtime):
    code = """
        try:
            huge = bytearray(16 * 2**30)
        except MemoryError:
            pass
        blocks = []
        while True:
            blocks.append(bytearray(64 * 2**20))
    """
    # generous time limits: on a loaded machine the time limits must not fire first
    spec = {"code": {"weight": 1.0, "cpu_s": 10.0, "wall_s": 20.0}}
    _, reason = contained(code_runtime, code, spec=spec)
    assert "memory limit" in reason


def test_infinite_loop(code_runtime):
    status, _ = contained(code_runtime, "while True:\n    pass\n")
    assert status == "timeout"


def test_sleep_forever_is_bounded_by_wall_clock(code_runtime):
    status, reason = contained(code_runtime, "import time\ntime.sleep(10**6)\n")
    assert (status, reason) == ("timeout", "test 0: wall-clock limit")


def test_huge_output(code_runtime):
    _, reason = contained(code_runtime, "while True:\n    print('x' * 65536)\n")
    assert "file size limit" in reason


def test_write_and_delete_outside(code_runtime, outside):
    code = f"""
        import os, shutil
        dirs = {outside!r}
        for d in dirs + ["/work/main", "/etc", "/root", os.path.expanduser("~")]:
            for attempt in (lambda: open(os.path.join(d, "sentinel"), "w").write("owned"),
                            lambda: os.remove(os.path.join(d, "sentinel")),
                            lambda: open(os.path.join(d, "new-file"), "w").write("x"),
                            lambda: shutil.rmtree(d)):
                try:
                    attempt()
                except OSError:
                    pass
        raise SystemExit("nothing outside could be changed")
    """
    _, reason = contained(code_runtime, code, outside_dirs=outside)
    assert "nothing outside could be changed" in reason


def test_environment_secrets(code_runtime, monkeypatch):
    monkeypatch.setenv("REASONRL_TEST_SECRET", "s3cr3t")
    code = """
        import os
        found = [v for k, v in os.environ.items() if "SECRET" in k]
        for pid in os.listdir("/proc"):
            try:
                found += [x for x in open(f"/proc/{pid}/environ", "rb").read().split(b"\\0") if b"SECRET" in x]
            except OSError:
                pass
        if not found:
            raise RuntimeError("no secret visible")
        print(found[0])
    """
    _, reason = contained(code_runtime, code, tests=[{"input": "", "output": "s3cr3t"}])
    assert "no secret visible" in reason


def test_reading_the_trainers_files(code_runtime):
    """Benchmark answers, the repository and home directories are hidden from programs."""
    from tests.rewards.qa import benchmark_path

    targets = [str(benchmark_path("gsm8k_test.jsonl")), os.path.abspath("pyproject.toml"),
               os.path.abspath(__file__), "/root/.bashrc"]
    assert any(os.path.exists(t) for t in targets)
    code = f"""
        readable = []
        for path in {targets!r}:
            try:
                readable.append(open(path).read(10))
            except OSError:
                pass
        if not readable:
            raise SystemExit("nothing readable")
        print(readable)
    """
    _, reason = contained(code_runtime, code)
    assert "nothing readable" in reason


def test_socket(code_runtime):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    port = server.getsockname()[1]
    code = f"""
        import socket
        for host in ("127.0.0.1", "1.1.1.1"):
            try:
                socket.create_connection((host, {port}), timeout=1).sendall(b"hello")
                print("connected")
            except OSError as exc:
                print(host, exc)
        raise SystemExit("no connection")
    """
    _, reason = contained(code_runtime, code)
    assert "no connection" in reason
    with pytest.raises(socket.timeout):
        server.accept()
    server.close()


def test_daemon_does_not_outlive_the_call(code_runtime, tmp_path):
    code = """
        import os, signal, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                while True:
                    time.sleep(0.1)
            os._exit(0)
        time.sleep(0.2)
        raise SystemExit("daemon started")
    """
    _, reason = contained(code_runtime, code)  # contained() asserts no sandbox process is left
    assert "daemon started" in reason


def test_killing_the_parent(code_runtime):
    targets = [os.getpid(), 1] + [w.proc.pid for w in code_runtime._pool.workers]
    code = f"""
        import os, signal
        for pid in {targets!r} + [os.getppid(), -1]:  # -1: every process it may signal
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        raise SystemExit("everyone survived")
    """
    _, reason = contained(code_runtime, code)
    assert reason == "test 0: exit code 1: everyone survived"


def test_killed_worker_takes_its_sandbox_along():
    """A pool timeout SIGKILLs the worker mid-program; the sandbox must not live on."""
    import time

    code = "import time\ntime.sleep(10**6)\n"
    with RewardRuntime(num_workers=1) as rt:
        rt._timeout = lambda *args: 1.0  # a pool deadline shorter than the sandbox's own 30 s
        start = time.monotonic()
        result = rt.score([completion(code)], [{"tests": [{"input": "", "output": "x"}]}],
                          spec={"code": {"weight": 1.0, "wall_s": 30.0}})
        assert time.monotonic() - start < 10
        assert result.status["code"] == ["timeout"]
        assert result.reasons["code"] == ["exceeded 1 s"]
        deadline = time.monotonic() + 5
        while sandbox_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sandbox_processes() == []
