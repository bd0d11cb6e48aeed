"""PID 1 of a code sandbox. Runs as root inside fresh pid, mount, network, ipc and uts
namespaces (created by `unshare` in sandbox.py); standard library only, started with -I -S.

Protocol: one JSON object on stdin ({"files", "runs", "limits", "uid", "python"}), one JSON
object on stdout ({"results": [...]}). Each run is a fresh child process that drops to the
sandbox uid, enters a new user namespace, applies resource limits and execs the interpreter with
an empty environment. When this process exits the kernel SIGKILLs everything left in the pid
namespace, which is what guarantees that no program outlives the call.
"""

import ctypes
import json
import os
import resource
import signal
import sys
import time

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND = 1, 2, 4, 32, 4096
CLONE_NEWUSER = 0x10000000
PR_SET_DUMPABLE = 4
WORK, IO = "/tmp/work", "/tmp/.io"
SKIP_READONLY = ("/proc", "/dev")


def libc():
    return ctypes.CDLL(None, use_errno=True)


def mount(lib, source, target, fstype, flags, data):
    enc = (lambda s: None if s is None else s.encode())
    if lib.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def mount_points():
    with open("/proc/self/mountinfo") as fh:
        points = [line.split()[4] for line in fh]
    return sorted(set(points), key=len)


def lock_filesystem(lib, tmpfs_mb, hide):
    """Every mount read-only; empty read-only tmpfs over `hide` (home directories, the
    trainer's working directory and repository: datasets, answers, credentials); then small
    private tmpfs where programs expect to write."""
    for point in mount_points():
        if point.startswith(SKIP_READONLY) and point != "/dev/shm":
            continue
        try:
            mount(lib, None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
        except OSError:
            if point == "/":
                raise  # without a read-only root, refuse rather than run
            # other mounts that refuse stay covered by the sandbox uid's file permissions
    for point in hide:
        if os.path.isdir(point):
            mount(lib, "tmpfs", point, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=755")
    for point in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock"):
        if os.path.isdir(point):
            mount(lib, "tmpfs", point, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmpfs_mb}m,mode=1777")


def write_files(files, uid):
    os.makedirs(IO, mode=0o700)
    os.makedirs(WORK, mode=0o700)
    for name, text in files.items():
        with open(os.path.join(WORK, name), "w") as fh:
            fh.write(text)
        os.chown(os.path.join(WORK, name), uid, uid)
    os.chown(WORK, uid, uid)


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
        fd_in = os.open(stdin_path, os.O_RDONLY)
        fd_out = os.open(os.path.join(IO, f"out{index}"), os.O_WRONLY | os.O_CREAT, 0o600)
        fd_err = os.open(os.path.join(IO, f"err{index}"), os.O_WRONLY | os.O_CREAT, 0o600)
        for src, dst in ((fd_in, 0), (fd_out, 1), (fd_err, 2)):
            os.dup2(src, dst)
        os.closerange(3, 4096)
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


def same_output(actual, expected):
    """Equal up to trailing whitespace on each line and trailing blank lines."""
    def lines(text):
        return [line.rstrip() for line in text.strip("\n").rstrip().split("\n")]
    return lines(actual) == lines(expected)


def failed(result, run):
    if result["exit"] != 0 or result["timed_out"] or result["stdout_truncated"]:
        return True
    return run.get("expect") is not None and not same_output(result["stdout"], run["expect"])


def run_one(lib, run, index, spec):
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        exec_child(lib, run, index, spec)
    status, timed_out = wait_child(pid, float(spec["limits"]["wall_s"]))
    reap_everything()
    cap = int(spec["limits"]["output_bytes"])
    stdout, truncated = read_capped(os.path.join(IO, f"out{index}"), cap)
    stderr, _ = read_capped(os.path.join(IO, f"err{index}"), 4096)
    return {
        "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "timed_out": timed_out,
        "stdout": stdout,
        "stdout_truncated": truncated,
        "stderr": stderr[-2000:],
        "wall_s": round(time.monotonic() - start, 4),
    }


def main():
    spec = json.loads(sys.stdin.read())
    lib = libc()
    lock_filesystem(lib, int(spec["limits"]["tmpfs_mb"]), spec.get("hide", []))
    write_files(spec["files"], int(spec["uid"]))
    results = []
    for index, run in enumerate(spec["runs"]):
        result = run_one(lib, run, index, spec)
        results.append(result)
        if spec.get("stop_on_failure") and failed(result, run):
            break
    sys.stdout.write(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
