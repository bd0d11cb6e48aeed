"""User verifiers loaded by `module:function` in the runtime tests."""

import os
import time


def length_over_ten(completion, example, scale=1.0):
    return scale * (len(completion) > 10)


def sleep_forever(completion, example):
    if "sleep" in completion:
        time.sleep(10_000)
    return 1.0


def crash(completion, example):
    if "crash" in completion:
        os._exit(3)
    return 1.0


def raises(completion, example):
    raise ValueError("broken verifier")


def nothing(completion, example):
    return None


def value_from_text(completion, example):
    return float(completion)


def leave_a_child(completion, example):
    """Starts `sleep 1000` (and a double-forked one, re-parented away from the worker),
    records their pids, returns without waiting; with "hang", then sleeps until killed."""
    import subprocess

    child = subprocess.Popen(["sleep", "1000"])
    orphan = subprocess.Popen(["sh", "-c", "sleep 1000 & echo $!"], stdout=subprocess.PIPE, text=True)
    pids = [child.pid, int(orphan.stdout.readline())]
    orphan.wait()
    with open(example["pid_file"], "w") as fh:
        fh.write(" ".join(map(str, pids)))
    if "hang" in completion:
        time.sleep(10_000)
    return 1.0
