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
