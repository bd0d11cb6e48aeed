"""Reward hacks from an adversarial audit: programs that scored 1.0 without solving the task.
Each must now score 0 (or a counted failure) while the correct program still scores 1.0."""

import os
import shutil
import socket
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from reasonrl.rewards import RewardFailure, get_verifier
from reasonrl.rewards.sandbox import sandbox_check

pytestmark = pytest.mark.skipif(sandbox_check() is not None,
                                reason=f"sandbox unavailable here: {sandbox_check()}")

ASSERT_TESTS = [{"assert": "assert add(2, 2) == 4"}, {"assert": "assert add(1, 5) == 6"}]
CORRECT_ADD = "def add(a, b):\n    return a + b\n"


def completion(code: str) -> str:
    return f"```python\n{textwrap.dedent(code)}\n```"


def reward(code: str, tests, **options) -> float:
    """The reward a program earns; a RewardFailure counts as the failure value 0.0."""
    verifier = get_verifier("code", check_sandbox=False, **{"cpu_s": 1.0, "wall_s": 2.0, **options})
    try:
        return verifier(completion(code), {"tests": tests})
    except RewardFailure:
        return 0.0


def test_correct_assert_program_passes():
    assert reward(CORRECT_ADD, ASSERT_TESTS) == 1.0
    float_tests = [{"assert": "import math\nassert math.isclose(half(3), 1.5)"},
                   {"assert": "xs = [3, 1, 2]\nassert sorted(half_all(xs)) == [0.5, 1.0, 1.5]"},
                   {"assert": "assert sum(half(i) for i in range(4)) == 3.0 and not half(0)"}]
    code = "def half(x):\n    return x / 2\ndef half_all(xs):\n    return [half(x) for x in xs]\n"
    assert reward(code, float_tests) == 1.0


@pytest.mark.parametrize("name, code", [
    ("sys.exit at module level", "import sys\nsys.exit(0)"),
    ("os._exit", "import os\nos._exit(0)"),
    ("atexit hook", "import atexit, os\natexit.register(lambda: os._exit(0))\n"
                    "def add(a, b):\n    raise AssertionError"),
    ("exit before the failing check", "def add(a, b):\n    import os\n    os._exit(0)"),
    ("__eq__ always True", "class Any:\n    def __eq__(self, other):\n        return True\n"
                           "    __hash__ = object.__hash__\ndef add(a, b):\n    return Any()"),
    ("int subclass", "class Int(int):\n    def __eq__(self, other):\n        return True\n"
                     "def add(a, b):\n    return Int(0)"),
    ("excepthook exits 0", "import os, sys\nsys.excepthook = lambda *a: os._exit(0)\n"
                           "def add(a, b):\n    return 0"),
    ("AssertionError overridden", "import builtins\nclass Quiet(BaseException):\n    pass\n"
                                  "builtins.AssertionError = Quiet\ndef add(a, b):\n    return 0"),
    ("SystemExit in __del__", "class Bye:\n    def __del__(self):\n        raise SystemExit(0)\n"
                              "keep = Bye()\ndef add(a, b):\n    return 0"),
    ("os._exit in __del__ at shutdown", "import os\nclass Bye:\n    def __del__(self):\n"
                                        "        os._exit(0)\nkeep = Bye()\ndef add(a, b):\n    return 0"),
    ("signal handler exits 0", "import os, signal\n"
                               "signal.signal(signal.SIGALRM, lambda *a: os._exit(0))\n"
                               "signal.setitimer(signal.ITIMER_REAL, 0.01)\n"
                               "def add(a, b):\n    import time\n    time.sleep(1)\n    return 0"),
    ("forged report on fd 3", "import os, json\n"
                              "os.write(3, json.dumps([['ok', ['b', True]]] * 2).encode())\n"
                              "os._exit(0)"),
])
def test_assert_bypass_scores_nothing(name, code):
    assert reward(code, ASSERT_TESTS) == 0.0, name


def test_shadowed_builtins_do_not_change_the_check():
    code = "import builtins\nbuiltins.sorted = lambda *a, **k: [1, 2, 3]\ndef order(xs):\n    return xs"
    tests = [{"assert": "assert sorted(order([3, 1, 2]), reverse=True) == [1, 2, 3]"}]
    assert reward(code, tests) == 0.0
    assert reward("def order(xs):\n    return xs", tests) == 0.0
    assert reward("def order(xs):\n    return [2, 3, 1]", [{"assert": "assert sorted(order([1])) == [1, 2, 3]"}]) == 1.0


def test_tests_run_alone_and_cannot_see_each_other():
    """A lookup table built from the other tests' files or expected outputs gets nothing."""
    tests = [{"input": "1\n", "output": "secret-one"}, {"input": "2\n", "output": "secret-two"},
             {"assert": "assert answer() == 'secret-three'"}]
    code = """
        import os, sys
        seen = []
        for root, dirs, files in list(os.walk(".")) + list(os.walk("/tmp")):
            for name in files:
                try:
                    seen.append(open(os.path.join(root, name), errors="replace").read())
                except OSError:
                    pass
        blob = "\\n".join(seen)
        words = ["secret-" + w for w in ("one", "two", "three")]  # not in this source as such
        found = [w for w in words if w in blob]
        def answer():
            return found[-1] if found else "nothing"
        if sys.stdin.read().strip():
            print(found[0] if found else "nothing")
    """
    assert reward(code, tests, partial=True, wall_s=4.0) == 0.0


def test_working_directory_holds_only_this_test():
    code = """
        import os, sys
        def listing():
            return sorted(os.listdir("."))
        if sys.stdin.read():
            print(listing())
    """
    tests = [{"input": "x", "output": "['main.py']"}, {"assert": "assert listing() == ['_check.py', 'main.py']"}]
    assert reward(code, tests) == 1.0


@pytest.mark.parametrize("tests", [
    [{"input": "1\n"}],                                 # no output
    [{"stdin": "1\n"}],                                 # stdin without stdout
    [{"inputs": ["1\n"]}],                              # APPS without outputs
    {"inputs": ["1\n", "2\n"], "outputs": ["1"]},       # APPS, one output short
    [{"input": "1\n", "output": None}],
    [{"cases": [1, 2]}],                                # unknown layout
    [{"assert": "x = 1"}],                              # no assert statement
    [{"assert": "assert True"}],                        # does not involve the program
    [{"assert": "def check(f):\n    assert f(1) == 2\ncheck(add)"}],  # would run inside
])
def test_test_without_expectation_is_never_a_pass(tests):
    verifier = get_verifier("code", check_sandbox=False)
    with pytest.raises(RewardFailure, match="malformed tests") as info:
        verifier(completion(""), {"tests": tests})  # an empty program
    assert info.value.kind == "error"


def test_common_layouts_are_accepted():
    code = "print(int(input()) * 2)"
    assert reward(code, [{"stdin": "2\n", "stdout": "4"}]) == 1.0
    assert reward(code, {"inputs": ["2\n", "5\n"], "outputs": ["4\n", "10\n"]}) == 1.0
    assert reward(code, [{"inputs": ["2\n"], "outputs": ["5\n"]}]) == 0.0


@pytest.fixture
def host_data(tmp_path):
    """Data the trainer can read: a JSONL dataset outside any working directory, a shared
    copy of a benchmark in a world-readable place, and this package's vendored benchmarks."""
    from tests.rewards.qa import benchmark_path

    dataset = tmp_path / "train.jsonl"
    dataset.write_text('{"prompt": "p", "answer": "dataset-answer-731"}\n')
    shared = tempfile.mkdtemp(prefix="reasonrl-shared-", dir="/opt" if os.path.isdir("/opt") else "/")
    os.makedirs(os.path.join(shared, "benchmarks"))
    shutil.copy(benchmark_path("gsm8k_test.jsonl"), os.path.join(shared, "benchmarks"))
    for path in (tmp_path, shared, os.path.join(shared, "benchmarks")):
        os.chmod(path, 0o755)
    package_benchmarks = os.path.join(os.path.dirname(os.path.abspath(
        __import__("reasonrl").__file__)), "data", "benchmarks")
    yield [str(dataset), os.path.join(shared, "benchmarks", "gsm8k_test.jsonl"),
           os.path.join(package_benchmarks, "gsm8k_test.jsonl"), package_benchmarks]
    shutil.rmtree(shared, ignore_errors=True)


def test_data_paths_are_unreadable(host_data):
    assert all(os.path.exists(p) for p in host_data)
    code = f"""
        import os
        readable = []
        for path in {host_data!r}:
            try:
                readable.append(open(path).read(10) if os.path.isfile(path) else os.listdir(path))
            except OSError:
                pass
        for root, dirs, files in os.walk("/"):  # nor any copy anywhere the program can reach
            if not root.startswith(("/proc", "/sys")):
                readable += [f for f in files if f.endswith(".jsonl") or f == "SHA256SUMS"]
                readable += [d for d in dirs if d in ("reasonrl", "site-packages", "benchmarks")]
        print(readable)
    """
    assert reward(code, [{"input": "", "output": "[]"}]) == 1.0  # it saw nothing at all


@pytest.fixture
def socket_dir():
    """A world-writable directory outside /tmp (the old sandbox's private tmpfs hid /tmp)."""
    path = tempfile.mkdtemp(prefix="reasonrl-sock-", dir="/opt" if os.path.isdir("/opt") else "/")
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_host_unix_sockets_are_unreachable(socket_dir):
    path = os.path.join(socket_dir, "listener.sock")
    received, servers = [], []
    addresses = [path, "\0reasonrl-test-abstract-" + str(os.getpid())]
    for address in addresses:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(address)
        server.listen()
        server.settimeout(0.2)
        servers.append(server)
    os.chmod(path, 0o777)

    def accept_all():
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            for server in servers:
                try:
                    received.append(server.accept()[0].recv(100))
                except OSError:
                    pass
    thread = threading.Thread(target=accept_all)
    thread.start()
    code = f"""
        import socket
        for address in {addresses!r}:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(address)
                s.sendall(b"leaked")
                print("connected")
            except OSError:
                pass
        print("done")
    """
    assert reward(code, [{"input": "", "output": "done"}]) == 1.0  # never "connected"
    thread.join()
    assert received == []
    for server in servers:
        server.close()


@pytest.mark.slow
def test_slow_tests_share_one_budget():
    """12 tests of 1.9 s each would take 23 s; all of them together get total_s = 5 s."""
    code = "import time\ntime.sleep(1.9)\nprint('ok')"
    verifier = get_verifier("code", check_sandbox=False, wall_s=4.0, total_s=5.0)
    start = time.monotonic()
    with pytest.raises(RewardFailure, match="budget") as info:
        verifier(completion(code), {"tests": [{"input": "", "output": "ok"}] * 12})
    assert time.monotonic() - start < 5.0 + 3.0  # the budget plus sandbox start-up
    assert info.value.kind == "timeout"
    fast = get_verifier("code", check_sandbox=False, total_s=5.0)
    assert fast(completion("print('ok')"), {"tests": [{"input": "", "output": "ok"}] * 12}) == 1.0


@pytest.fixture
def outside_tmp():
    """A directory outside /tmp (the program's /tmp is its own fresh tmpfs)."""
    path = tempfile.mkdtemp(prefix="reasonrl-prefix-", dir="/opt" if os.path.isdir("/opt") else "/")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def test_installed_package_data_inside_the_allow_list_is_covered(outside_tmp, monkeypatch):
    """An installed (non-editable) reasonrl keeps its benchmarks in site-packages, which can lie
    inside an allow-listed prefix (e.g. a standalone interpreter's lib directory)."""
    from reasonrl.rewards import sandbox

    tmp_path = outside_tmp
    prefix = tmp_path / "prefix" / "lib"
    data = prefix / "site-packages" / "reasonrl" / "data" / "benchmarks"
    data.mkdir(parents=True)
    (data / "gsm8k_test.jsonl").write_text('{"answer": "72"}\n')
    (prefix / "libvisible.txt").write_text("visible")
    for path in [tmp_path, *prefix.parents[:2], prefix, *[p for p in data.parents if prefix in p.parents], data]:
        os.chmod(path, 0o755)
    expose, hide = sandbox.filesystem_view(sandbox.program_python())
    monkeypatch.setattr(sandbox, "filesystem_view", lambda python: (
        (*expose, str(prefix)), (*hide, str(prefix / "site-packages"))))
    code = f"""
        import os
        print(open({str(prefix / "libvisible.txt")!r}).read(), os.listdir({str(prefix / "site-packages")!r}))
    """
    assert reward(code, [{"input": "", "output": "visible []"}]) == 1.0
