"""PID 1 of a code sandbox. Runs as root inside fresh pid, mount, network, ipc and uts
namespaces (created by `unshare` in sandbox.py); standard library only, started with -I -S.

Protocol: one JSON object on stdin ({"files", "runs", "limits", "uid", "python", "expose",
"hide"}), one JSON object on stdout ({"results": [...], "budget_exhausted": bool}).

The filesystem is an allow-list: an empty tmpfs becomes the root (pivot_root; the host's tree
is detached, not merely covered) and only `expose` (the interpreter, its standard library and
shared libraries) is bind-mounted into it, read-only; `hide` (site-packages, this package) is
covered again inside those. Each run is a fresh child process that sees a fresh /tmp holding
only its own files, drops to the sandbox uid, enters a new user namespace, applies resource
limits and execs the interpreter with an empty environment. When this process exits the kernel
SIGKILLs everything left in the pid namespace, so no program outlives the call.
"""

import ctypes
import hashlib
import json
import os
import resource
import signal
import sys
import time

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_RELATIME = 1024, 2048, 4096, 16384, 1 << 21
MNT_DETACH = 2
# statvfs flag -> mount flag that a bind remount must repeat (the kernel refuses to drop them)
LOCKED_FLAGS = {8: MS_NOEXEC, 1024: MS_NOATIME, 2048: MS_NODIRATIME, 4096: MS_RELATIME}
PIVOT_ROOT_SYSCALL = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
CLONE_NEWUSER = 0x10000000
PR_SET_DUMPABLE = 4
# where the new root is assembled: a private tmpfs over one of these host directories, the
# first that no exposed path lies under (mounting over it hides its content from PID 1)
STAGING_CANDIDATES = ("/tmp", "/mnt", "/media", "/srv", "/var/tmp", "/run", "/opt")
WORK, IO = "/tmp/work", "/.io"
DEVICES = ("null", "zero", "full", "random", "urandom")
REPORT_FD = 3


def libc():
    return ctypes.CDLL(None, use_errno=True)


def mount(lib, source, target, fstype, flags, data):
    enc = (lambda s: None if s is None else s.encode())
    if lib.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def umount(lib, target):
    if lib.umount2(target.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def bind(lib, source, target, readonly=True):
    """Bind `source` onto `target` (created empty); read-only, nosuid, nodev unless a device."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    elif not os.path.exists(target):
        open(target, "w").close()
    mount(lib, source, target, None, MS_BIND, None)
    if readonly:
        locked = os.statvfs(source).f_flag
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
        flags |= sum(flag for st, flag in LOCKED_FLAGS.items() if locked & st)
        mount(lib, None, target, None, flags, None)  # raises: never expose a writable path


def _covered(path, bound):
    return any(path == b or path.startswith(b.rstrip("/") + "/") for b in bound)


def expose(lib, root, path, bound, depth=0):
    """Make host `path` visible at the same path under `root`: symlinks on the way are
    recreated (so /lib64/ld-linux... resolves as on the host), the final target bind-mounted."""
    if depth > 40 or not os.path.lexists(path):
        return
    current = ""
    parts = [p for p in path.split("/") if p]
    for index, part in enumerate(parts):
        current += "/" + part
        if _covered(current, bound):
            return
        if os.path.islink(current):
            target = os.readlink(current)
            if not os.path.lexists(root + current):
                os.makedirs(os.path.dirname(root + current), exist_ok=True)
                os.symlink(target, root + current)
            resolved = os.path.normpath(os.path.join(os.path.dirname(current), target))
            rest = "/".join(parts[index + 1:])
            expose(lib, root, resolved + ("/" + rest if rest else ""), bound, depth + 1)
            return
    bind(lib, current, root + current)
    bound.append(current)


def build_root(lib, spec):
    """The sandbox's whole filesystem, assembled on a staging tmpfs before pivot_root."""
    root = next((c for c in STAGING_CANDIDATES if os.path.isdir(c) and not os.path.islink(c)
                 and not _covered(c, [os.path.realpath(p) for p in spec["expose"]])
                 and not any(_covered(p, [c]) for p in spec["expose"])), None)
    if root is None:
        raise OSError("no directory to assemble the sandbox root in")
    mount(lib, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    bound = []
    for path in sorted(set(spec["expose"]), key=len):
        expose(lib, root, path, bound)
    for path in spec.get("hide", []):
        if os.path.isdir(root + path) and _covered(path, bound):
            mount(lib, "tmpfs", root + path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV,
                  "size=4k,mode=755")
    os.makedirs(root + "/dev/shm", exist_ok=True)
    for name in DEVICES:
        bind(lib, "/dev/" + name, root + "/dev/" + name, readonly=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, root + "/dev/" + name)
    os.makedirs(root + "/proc", exist_ok=True)
    try:
        mount(lib, "proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    except OSError:  # some containers refuse a fresh proc; unshare's --mount-proc one is ours
        mount(lib, "/proc", root + "/proc", None, MS_BIND | MS_REC, None)
    os.makedirs(root + "/tmp", exist_ok=True)
    os.makedirs(root + IO, exist_ok=True)
    mount(lib, "tmpfs", root + IO, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
          f"size={4 * int(spec['limits']['file_mb']) + 1}m,mode=700")
    return root


def enter_root(lib, root):
    """pivot_root into `root` and detach the host's tree: nothing else stays reachable."""
    number = PIVOT_ROOT_SYSCALL.get(os.uname().machine)
    if number is None:
        raise OSError(f"pivot_root syscall number unknown for {os.uname().machine}")
    os.chdir(root)
    if lib.syscall(number, b".", b".") != 0:
        raise OSError(ctypes.get_errno(), "pivot_root")
    umount(lib, ".")
    os.chdir("/")
    mount(lib, None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)


def prepare_run(lib, files, uid, tmpfs_mb):
    """A fresh /tmp and /dev/shm holding only this run's files: nothing of other tests (their
    inputs, their checks) or of earlier runs is reachable."""
    for point in ("/tmp", "/dev/shm"):
        mount(lib, "tmpfs", point, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmpfs_mb}m,mode=1777")
    os.makedirs(WORK, mode=0o700)
    for name, text in files.items():
        with open(os.path.join(WORK, name), "w") as fh:
            fh.write(text)
        os.chown(os.path.join(WORK, name), uid, uid)
    os.chown(WORK, uid, uid)


def finish_run(lib, index):
    for point in ("/tmp", "/dev/shm"):
        umount(lib, point)
    for kind in ("in", "out", "err", "report"):
        try:
            os.unlink(os.path.join(IO, f"{kind}{index}"))
        except FileNotFoundError:
            pass


def enter_user_namespace(lib, uid):
    """A user namespace owned by the sandbox uid, mapping only that uid onto itself."""
    # setuid() cleared the dumpable flag, which makes /proc/self/*_map root-owned
    lib.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    if lib.unshare(CLONE_NEWUSER) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER)")
    with open("/proc/self/setgroups", "w") as fh:
        fh.write("deny")
    with open("/proc/self/uid_map", "w") as fh:
        fh.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as fh:
        fh.write(f"{uid} {uid} 1")


def set_limits(limits):
    cpu = int(limits["cpu_s"])
    mem = int(limits["memory_mb"]) << 20
    pairs = {
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_AS: (mem, mem),
        resource.RLIMIT_FSIZE: (int(limits["file_mb"]) << 20,) * 2,
        resource.RLIMIT_NPROC: (int(limits["nproc"]),) * 2,
        resource.RLIMIT_NOFILE: (64, 64),
        resource.RLIMIT_CORE: (0, 0),
    }
    for which, value in pairs.items():
        resource.setrlimit(which, value)


def exec_child(lib, run, index, spec):
    """In the forked child: redirect, drop privileges, limit, exec. Never returns."""
    try:
        stdin_path = os.path.join(IO, f"in{index}")
        with open(stdin_path, "w") as fh:
            fh.write(run.get("stdin") or "")
        fds = [os.open(stdin_path, os.O_RDONLY)]
        for kind in ("out", "err", "report"):
            fds.append(os.open(os.path.join(IO, f"{kind}{index}"), os.O_WRONLY | os.O_CREAT, 0o600))
        for target, fd in enumerate(fds):  # 0 stdin, 1 stdout, 2 stderr, 3 report
            os.dup2(fd, target)
        os.closerange(REPORT_FD + 1, 4096)
        uid = int(spec["uid"])
        set_limits(spec["limits"])
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        enter_user_namespace(lib, uid)
        os.chdir(WORK)
        python = spec["python"]
        os.execve(python, [python, "-I", "-S", run["file"]], {})
    except BaseException as exc:  # report the set-up failure through stderr, then die
        os.write(2, f"sandbox setup failed: {exc!r}".encode())
    os._exit(111)


def wait_child(pid, wall_s):
    """(status, timed_out): poll so a sleeping program cannot outlast its wall-clock limit."""
    deadline = time.monotonic() + wall_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1], True
        time.sleep(0.002)


def reap_everything():
    """Kill every other process of this pid namespace (daemons, fork bombs) and reap them."""
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def read_capped(path, cap):
    try:
        with open(path, "rb") as fh:
            data = fh.read(cap + 1)
    except OSError:
        return "", False
    return data[:cap].decode("utf-8", "replace"), len(data) > cap


def normalised(text):
    """Trailing whitespace on each line and trailing blank lines dropped."""
    return "\n".join(line.rstrip() for line in text.strip("\n").rstrip().split("\n"))


def same_output(actual, expected):
    return normalised(actual) == normalised(expected)


def output_digest(text):
    """What PID 1 compares: expected outputs reach the sandbox only as digests."""
    return hashlib.sha256(normalised(text).encode("utf-8", "surrogatepass")).hexdigest()


def failed(result, run):
    if result["exit"] != 0 or result["timed_out"] or result["stdout_truncated"]:
        return True
    return run.get("expect_sha") is not None and output_digest(result["stdout"]) != run["expect_sha"]


def run_one(lib, run, index, spec, wall_s):
    start = time.monotonic()
    files = {**spec["files"], **run.get("files", {})}
    prepare_run(lib, files, int(spec["uid"]), int(spec["limits"]["tmpfs_mb"]))
    pid = os.fork()
    if pid == 0:
        exec_child(lib, run, index, spec)
    status, timed_out = wait_child(pid, wall_s)
    reap_everything()
    cap = int(spec["limits"]["output_bytes"])
    stdout, truncated = read_capped(os.path.join(IO, f"out{index}"), cap)
    stderr, _ = read_capped(os.path.join(IO, f"err{index}"), 4096)
    report, _ = read_capped(os.path.join(IO, f"report{index}"), cap)
    finish_run(lib, index)
    return {
        "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "timed_out": timed_out,
        "stdout": stdout,
        "stdout_truncated": truncated,
        "stderr": stderr[-2000:],
        "report": report,
        "wall_s": round(time.monotonic() - start, 4),
    }


def run_all(lib, spec):
    """Every run, in order, within one wall-clock budget for all of them (`total_s`): many
    slow tests must not multiply the time a completion may take."""
    limits = spec["limits"]
    deadline = time.monotonic() + float(limits["total_s"])
    results, exhausted = [], False
    for index, run in enumerate(spec["runs"]):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            exhausted = True
            break
        wall_s = min(float(limits["wall_s"]), remaining)
        result = run_one(lib, run, index, spec, wall_s)
        result["budget_cut"] = result["timed_out"] and wall_s < float(limits["wall_s"])
        exhausted = exhausted or result["budget_cut"]
        results.append(result)
        if spec.get("stop_on_failure") and failed(result, run):
            break
    return results, exhausted


def main():
    spec = json.loads(sys.stdin.read())
    lib = libc()
    enter_root(lib, build_root(lib, spec))
    results, exhausted = run_all(lib, spec)
    sys.stdout.write(json.dumps({"results": results, "budget_exhausted": exhausted}))


if __name__ == "__main__":
    main()
