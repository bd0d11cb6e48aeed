"""Run untrusted Python programs in an isolated, resource-limited sandbox.

Layout of one call (threat model and rationale: docs/rewards.md):

    worker process
      └─ unshare --pid --fork --kill-child --mount --mount-proc --net --ipc --uts
           └─ _sandbox_init.py  (root, PID 1 of the new pid namespace; builds an allow-list
                │                  root of read-only binds and pivots into it)
                └─ program      (sandbox uid, own user namespace, rlimits, empty env)

Refuses to run (SandboxUnavailable) instead of degrading to an unisolated run.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
from dataclasses import asdict, dataclass

INIT_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sandbox_init.py")
PR_SET_PDEATHSIG = 1
UID_BASE = 200_000
UID_COUNT = 100_000


class SandboxUnavailable(RuntimeError):
    """Isolation this sandbox requires is missing here; code rewards refuse to run."""


@dataclass(frozen=True)
class Limits:
    cpu_s: float = 2.0          # RLIMIT_CPU per program run
    wall_s: float = 4.0         # wall clock per program run (sleeping programs use no CPU)
    memory_mb: int = 512        # RLIMIT_AS
    file_mb: int = 8            # RLIMIT_FSIZE: any file, stdout and stderr included
    output_bytes: int = 1 << 20  # stdout read back at most this much
    nproc: int = 16             # RLIMIT_NPROC for the sandbox uid (binds: the uid is not root)
    tmpfs_mb: int = 64          # size of the private /tmp (working directory lives there)
    total_s: float = 10.0       # wall clock for all runs of one call together


def sandbox_uid(pid: int | None = None) -> int:
    """A uid no other live sandbox uses: sandboxes run one at a time per worker process, and
    distinct live pids stay distinct modulo UID_COUNT while pid_max <= UID_COUNT."""
    return UID_BASE + (os.getpid() if pid is None else pid) % UID_COUNT


def _world_executable(path: str) -> bool:
    """Whether an unprivileged uid can reach and execute `path` (every directory o+x)."""
    path = os.path.realpath(path)
    parts = path.split(os.sep)
    for i in range(2, len(parts)):
        if not os.stat(os.sep.join(parts[:i])).st_mode & stat.S_IXOTH:
            return False
    return bool(os.stat(path).st_mode & stat.S_IXOTH)


def program_python(candidates: tuple[str, ...] | None = None) -> str | None:
    """The first interpreter the sandbox uid can run (a pyenv under /root/ is not reachable)."""
    for path in candidates or (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        if path and os.path.exists(path) and _world_executable(path):
            return os.path.realpath(path)
    return None


# Run by the program's interpreter (as root, outside any sandbox, once per process): what it
# needs to start and to import any standard-library module.
PROBE = """
import json, os, site, sys, sysconfig
dynload = [p for p in sys.path if p.endswith("lib-dynload")]
for name in sorted(os.listdir(dynload[0])) if dynload else []:
    if not name.startswith(("_test", "xx")):
        try:
            __import__(name.split(".")[0])
        except Exception:
            pass
maps = sorted({line.split()[-1] for line in open("/proc/self/maps") if "/" in line.split()[-1]})
sites = site.getsitepackages() + [site.getusersitepackages()]
sites += [sysconfig.get_paths()[k] for k in ("purelib", "platlib")]
print(json.dumps({"stdlib": sysconfig.get_paths()["stdlib"], "maps": maps, "sites": sites,
                  "executable": os.path.realpath(sys.executable)}))
"""


def elf_interpreter(path: str) -> str | None:
    """The dynamic loader a 64-bit ELF executable names (PT_INTERP), e.g. /lib64/ld-linux-x86-64.so.2."""
    with open(path, "rb") as fh:
        head = fh.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return None
        order = "<" if head[5] == 1 else ">"
        (phoff,) = struct.unpack_from(order + "Q", head, 0x20)
        entsize, count = struct.unpack_from(order + "HH", head, 0x36)
        fh.seek(phoff)
        table = fh.read(entsize * count)
        for i in range(count):
            if struct.unpack_from(order + "I", table, i * entsize)[0] == 3:  # PT_INTERP
                offset, _, _, size = struct.unpack_from(order + "QQQQ", table, i * entsize + 8)
                fh.seek(offset)
                return fh.read(size).rstrip(b"\0").decode()
    return None


@functools.lru_cache(maxsize=4)
def filesystem_view(python: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(expose, hide): the allow-list a program may read, read-only — the interpreter, its
    loader, its standard library and the directories of the shared libraries it maps — and,
    inside those, what must stay hidden: site-packages (installed packages, this one and its
    vendored benchmarks included) and this package's own directory."""
    out = subprocess.run([python, "-I", "-S", "-c", PROBE], capture_output=True, text=True,
                         env={}, timeout=60, cwd="/", check=True).stdout
    info = json.loads(out)
    expose = {info["executable"], info["stdlib"], "/etc/ld.so.cache"}
    expose |= {os.path.dirname(path) for path in info["maps"] if path != info["executable"]}
    interpreter = elf_interpreter(info["executable"])
    if interpreter:
        expose.add(interpreter)
    package = os.path.dirname(os.path.abspath(__file__))
    hide = set(info["sites"]) | {package, os.path.dirname(package)}
    hide = {os.path.realpath(p) for p in hide if os.path.isdir(p)}
    expose = {p for p in expose if os.path.lexists(p)}
    return tuple(sorted(expose)), tuple(sorted(hide))


def _die_with_parent() -> None:
    """preexec_fn: if the worker is killed (pool timeout), `unshare` gets SIGKILL, which its
    --kill-child passes on to PID 1, which takes the whole pid namespace with it."""
    import ctypes

    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _command() -> list[str]:
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    return [unshare, "--pid", "--fork", "--kill-child", "--mount", "--mount-proc",
            "--propagation", "private", "--net", "--ipc", "--uts", "--",
            os.path.realpath(sys.executable), "-I", "-S", INIT_SCRIPT]


def run_programs(files: dict[str, str], runs: list[dict], limits: Limits = Limits(),
                 stop_on_failure: bool = False, python: str | None = None) -> dict:
    """Run each `{"file": name, "stdin": text, "files": {...}}` of `runs` in one sandbox; a run
    sees `files` plus its own `files`, in a fresh directory.

    Returns {"results": [one dict per run executed: exit, signal, timed_out, stdout,
    stdout_truncated, stderr, report, wall_s, budget_cut], "budget_exhausted": bool}. Raises
    SandboxUnavailable when isolation is missing.
    """
    python = python or program_python()
    if os.geteuid() != 0 or shutil.which("unshare") is None or python is None:
        raise SandboxUnavailable(_unavailable_reason(python))
    try:
        expose, hide = filesystem_view(python)
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        raise SandboxUnavailable(f"cannot inspect the sandbox interpreter {python}: {exc}") from None
    spec = {"files": files, "runs": runs, "limits": asdict(limits), "uid": sandbox_uid(),
            "python": python, "stop_on_failure": stop_on_failure, "expose": list(expose),
            "hide": list(hide)}
    budget = min(limits.total_s, (limits.wall_s + 0.5) * max(1, len(runs))) + 10.0
    proc = subprocess.run(_command(), input=json.dumps(spec), capture_output=True, text=True,
                          env={}, timeout=budget, cwd="/", preexec_fn=_die_with_parent)
    if proc.returncode != 0:
        raise SandboxUnavailable(f"sandbox failed to start (rc={proc.returncode}): "
                                 f"{proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)


def _unavailable_reason(python: str | None) -> str:
    if os.geteuid() != 0:
        return ("code rewards need root to create the sandbox (namespaces + an unprivileged uid); "
                "refusing to run untrusted code without isolation")
    if shutil.which("unshare") is None:
        return "code rewards need util-linux `unshare`; refusing to run untrusted code unisolated"
    return "no Python interpreter reachable by an unprivileged uid for the sandbox"


@functools.lru_cache(maxsize=1)
def sandbox_check() -> str | None:
    """None when the sandbox works here, else the reason it does not (cached per process)."""
    try:
        results = run_programs({"main.py": "print(6 * 7)\n"}, [{"file": "main.py"}])["results"]
    except (SandboxUnavailable, OSError, subprocess.SubprocessError, ValueError) as exc:
        return str(exc)
    if results[0]["stdout"].strip() != "42":
        return f"sandbox self-test failed: {results[0]}"
    return None


def require_sandbox() -> None:
    """Raise SandboxUnavailable with one clear message unless the sandbox works."""
    reason = sandbox_check()
    if reason is not None:
        raise SandboxUnavailable(reason)
