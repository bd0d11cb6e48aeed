"""Code problems with stdin/stdout tests (LiveCodeBench / Codeforces style), scored by the
sandboxed `code` verifier: the completion's last ```python block must print each test's output.

A row holds `question` (or `prompt` / `problem`) and `tests: [{"input": str, "output": str}]`;
optional `id`, `difficulty`, `platform`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import DataError, Task, check_options, take

PROMPT_FIELDS = ("question", "prompt", "problem")
INSTRUCTION = ("Write a Python 3 program that reads the input from standard input and prints the answer to "
               "standard output. Put the whole program in one ```python code block.")
META_FIELDS = ("difficulty", "platform")


def is_code_row(row: dict) -> bool:
    """True for a row with stdin/stdout tests and no answer (how `get_task` recognises the file)."""
    return isinstance(row.get("tests"), list) and "answer" not in row


def _tests(where: str, tests: Any) -> list[dict]:
    if not isinstance(tests, list) or not tests:
        raise DataError(f"{where}: 'tests' must be a non-empty list of {{input, output}} objects")
    for test in tests:
        if not isinstance(test, dict) or not isinstance(test.get("input"), str) or not isinstance(test.get("output"), str):
            raise DataError(f"{where}: every test needs string fields 'input' and 'output'")
    return [{"input": t["input"], "output": t["output"]} for t in tests]


def code_example(path: Path, number: int, row: dict) -> dict:
    where = f"{path}:{number}"
    question = next((row[f] for f in PROMPT_FIELDS if f in row), None)
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: needs a non-empty string field 'question' (or 'prompt' / 'problem')")
    meta = {"source": str(path), **{f: str(row[f]) for f in META_FIELDS if row.get(f) is not None}}
    example = {"id": str(row.get("id", f"{path.stem}-{number}")), "prompt": f"{question.strip()}\n\n{INSTRUCTION}",
               "answer": "", "tests": _tests(where, row.get("tests")), "meta": meta}
    if isinstance(row.get("solution"), str):  # a reference program: checks the tests, never shown to a model
        example["solution"] = row["solution"]
    return example


def load(path: str | Path) -> list[dict]:
    from .files import read_jsonl

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"task file not found: {path}")
    examples = [code_example(file, number, row) for number, row in read_jsonl(file)]
    ids = [e["id"] for e in examples]
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: duplicate id '{next(i for i in ids if ids.count(i) > 1)}'")
    return examples


def build(path: str, name: str | None = None, **options: Any) -> Task:
    """A stdin/stdout code-problem JSONL file as an evaluation task (split 'test'); no options."""
    opts = check_options(name or path, options, {})
    examples = load(path)
    label = name or str(path)
    return Task(name=label, verifier="code", splits=("test",),
                make=lambda split, n, seed: take(label, examples, n, seed), options=opts)
