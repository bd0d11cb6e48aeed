"""File-backed tasks: user JSONL files and the vendored evaluation benchmarks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from reasonrl.rewards.code_tests import MalformedTest, normalise_tests

from .base import DataError, Task, canonical_number, check_options, take

PROMPT_FIELDS = ("prompt", "question", "problem")
OPTIONAL_FIELDS = ("solution", "choices", "tests")
JSONL_DEFAULTS: dict[str, Any] = {"verifier": "math", "test_fraction": 0.0}
BENCHMARK_DEFAULTS: dict[str, Any] = {"data_dir": None}
BENCHMARK_FILES = {"math500": "math500.jsonl", "aime24": "aime24.jsonl", "amc23": "amc23.jsonl",
                   "gsm8k": "gsm8k_test.jsonl"}
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "benchmarks"


def read_jsonl(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line; a bad line raises DataError `file:line: ...`."""
    rows = []
    with open(path, "rb") as handle:  # decoded line by line, so a binary file is reported with its line
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{number}: not UTF-8 text (byte {raw[exc.start]:#04x} at column "
                                f"{exc.start + 1}); expected JSON Lines, one object per line") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            rows.append((number, row))
    return rows


def _user_example(path: Path, number: int, row: dict) -> dict:
    where = f"{path}:{number}"
    prompt = next((row[f] for f in PROMPT_FIELDS if f in row), None)
    if not isinstance(prompt, str) or not prompt.strip():
        raise DataError(f"{where}: needs a non-empty string field 'prompt' (or 'question' / 'problem')")
    if "answer" not in row or row["answer"] is None or isinstance(row["answer"], (dict, list, bool)):
        raise DataError(f"{where}: needs an 'answer' field (a string or a number)")
    meta = row.get("meta", {})
    if not isinstance(meta, dict):
        raise DataError(f"{where}: 'meta' must be an object")
    example = {"id": str(row.get("id", f"{path.stem}-{number}")), "prompt": prompt,
               "answer": canonical_number(row["answer"]), "meta": {"source": str(path), **meta}}
    example.update({f: row[f] for f in OPTIONAL_FIELDS if f in row})
    if "tests" in row:  # a test without an expectation would pass an empty program
        try:
            normalise_tests(row["tests"])
        except MalformedTest as exc:
            raise DataError(f"{where}: tests: {exc}") from None
    return example


def _load_user(path: Path) -> list[dict]:
    examples = [_user_example(path, number, row) for number, row in read_jsonl(path)]
    ids = [e["id"] for e in examples]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"{path}: duplicate id '{duplicate}'")
    return examples


def build_jsonl(path: str, **options: Any) -> Task:
    """A user JSONL file; options: verifier (default 'math'), test_fraction (docs/tasks.md)."""
    opts = check_options(path, options, JSONL_DEFAULTS)
    fraction = opts["test_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise ValueError(f"task '{path}': option 'test_fraction' must be in [0, 1), got {fraction!r}")
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"task file not found: {path}")
    examples = _load_user(file)  # read now: a malformed file fails before any training starts

    def make(split: str, n: int | None, seed: int) -> list[dict]:
        if fraction == 0:  # the whole file serves any split: the user keeps train and test files apart
            return take(path, examples, n, seed)
        mine = [e for e in examples if _fraction_split(e["prompt"], fraction) == split]
        return take(path, mine, n, seed)

    return Task(name=str(path), verifier=str(opts["verifier"]), splits=("train", "test"), make=make,
                options=opts)


def _fraction_split(prompt: str, fraction: float) -> str:
    digest = hashlib.sha256(f"jsonl|{prompt}".encode("utf-8")).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < fraction else "train"


def _checksums(data_dir: Path) -> dict[str, str]:
    sums = {}
    for line in (data_dir / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest
    return sums


def verify_checksum(file: Path) -> None:
    """Fail unless `file` matches its entry in SHA256SUMS beside it."""
    expected = _checksums(file.parent).get(file.name)
    if expected is None:
        raise DataError(f"{file}: no entry in {file.parent / 'SHA256SUMS'}")
    actual = hashlib.sha256(file.read_bytes()).hexdigest()
    if actual != expected:
        raise DataError(f"{file}: sha256 mismatch (expected {expected}, got {actual}); "
                        "the benchmark file was modified or is corrupt")


def _gsm8k_answer(text: str) -> tuple[str, str]:
    solution, sep, answer = text.rpartition("####")
    if not sep:
        raise ValueError("no '####' before the final answer")
    return canonical_number(answer.strip().replace(",", "")), solution.strip()


def _normalise(name: str, number: int, row: dict) -> dict:
    meta: dict[str, Any] = {"source": name}
    if name == "gsm8k":
        answer, solution = _gsm8k_answer(row["answer"])
        return {"id": f"gsm8k-{row.get('idx', number - 1)}", "prompt": row["question"], "answer": answer,
                "solution": solution, "meta": meta}
    if name == "math500":
        meta.update(subject=row["subject"], level=row["level"], unique_id=row["unique_id"])
        return {"id": f"math500-{row['unique_id']}", "prompt": row["problem"], "answer": str(row["answer"]).strip(),
                "solution": row["solution"], "meta": meta}
    meta.update(url=row.get("url"))
    example = {"id": f"{name}-{row['id']}", "prompt": row["problem"], "answer": canonical_number(row["answer"]),
               "meta": meta}
    if row.get("solution"):
        example["solution"] = row["solution"]
    return example


def load_benchmark(name: str, data_dir: str | Path | None = None) -> list[dict]:
    """The benchmark's Examples in file order, after verifying the file's sha256."""
    file = Path(data_dir or DATA_DIR) / BENCHMARK_FILES[name]
    verify_checksum(file)
    examples = []
    for number, row in read_jsonl(file):
        try:
            examples.append(_normalise(name, number, row))
        except (KeyError, ValueError) as exc:
            raise DataError(f"{file}:{number}: cannot read the {name} item ({exc!r})") from None
    return examples


def build_benchmark(name: str, **options: Any) -> Task:
    """An evaluation-only benchmark (split 'test'); option data_dir overrides the vendored copy."""
    opts = check_options(name, options, BENCHMARK_DEFAULTS)
    examples = load_benchmark(name, opts["data_dir"])
    return Task(name=name, verifier="math", splits=("test",),
                make=lambda split, n, seed: take(name, examples, n, seed), options=opts)
