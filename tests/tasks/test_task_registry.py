import subprocess
import sys
from pathlib import Path

import pytest

from reasonrl.tasks import get_task


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task 'arithmetics': expected one of arithmetic, countdown"):
        get_task("arithmetics")


def test_bad_split_and_n():
    task = get_task("arithmetic")
    with pytest.raises(ValueError, match="has no split 'validation'"):
        task.examples("validation")
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        task.examples("train", n=-1)


def test_names_and_verifiers():
    assert (get_task("arithmetic").verifier, get_task("countdown").verifier) == ("numeric", "countdown")
    assert get_task("aime24").name == "aime24"


def test_import_is_light():
    code = ("import sys, reasonrl.tasks; "
            "print(sorted(m for m in ('torch', 'transformers', 'reasoning_gym', 'tokenizers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
