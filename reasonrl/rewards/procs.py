"""Finding and killing a process's descendants (Linux /proc; elsewhere these do nothing).

A user verifier may start processes and return (or be killed) without ending them; the
worker ends them after every call and the pool ends a worker's whole tree when it kills it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphaned descendants (double-forked daemons) are re-parented to this process instead
    of init, so they stay findable as its children."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _children_by_scan(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4, after "(comm)"
            found.append(int(entry))
    return found


def children(pid: int) -> list[int]:
    """Direct children of `pid` (every thread's), [] where /proc is missing."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                found += [int(x) for x in fh.read().split()]
        except FileNotFoundError:  # kernel without CONFIG_PROC_CHILDREN
            return _children_by_scan(pid)
        except OSError:
            continue
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_descendants(pid: int, include_self: bool = False) -> list[int]:
    """SIGKILL every descendant of `pid` (and `pid` itself when asked). Each found process is
    stopped first, so none can fork new ones while the tree is walked. Returns what was killed."""
    frontier, seen = [pid], []
    if include_self:
        _signal(pid, signal.SIGSTOP)
        seen.append(pid)
    while frontier:
        found = [c for p in frontier for c in children(p) if c not in seen]
        for child in found:
            _signal(child, signal.SIGSTOP)
        seen += found
        frontier = found
    for victim in seen:
        _signal(victim, signal.SIGKILL)
    return [p for p in seen if p != pid or include_self]


def reap_children(deadline_s: float = 2.0) -> None:
    """Collect this process's dead children (killed descendants re-parented to it)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if done == 0:
            if not children(os.getpid()):
                return
            time.sleep(0.005)
