"""Multiple-choice questions in the GPQA Diamond layout, scored by the `choice` verifier.

A row holds `Question`, `Correct Answer` and `Incorrect Answer 1..3` (GPQA's own column names;
optional `Record ID` / `id`, `High-level domain`, `Subdomain`). The four options are shuffled
with a seed per problem, so the correct letter is spread over A-D, stable across runs, and the
same for every model compared on the file.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from .base import DataError, Task, check_options, take

LETTERS = "ABCD"
REQUIRED = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
DEFAULTS: dict[str, Any] = {"shuffle_seed": 0}
INSTRUCTION = "Answer with the letter (A, B, C or D) of the correct option."
META_FIELDS = {"High-level domain": "domain", "Subdomain": "subdomain"}


def is_choice_row(row: dict) -> bool:
    """True for a row in the GPQA layout (how `get_task` recognises such a .jsonl file)."""
    return "Question" in row and "Correct Answer" in row


def shuffled_options(row: dict, key: str, shuffle_seed: int) -> tuple[list[str], str]:
    """The four options in a seeded per-problem order, and the letter of the correct one."""
    options = [str(row[f]).strip() for f in REQUIRED[1:]]
    order = list(range(4))
    random.Random(f"choice|{key}|{shuffle_seed}").shuffle(order)
    shuffled = [options[i] for i in order]
    return shuffled, LETTERS[order.index(0)]


def render_question(question: str, options: list[str]) -> str:
    lines = [question.strip(), ""] + [f"{letter}) {text}" for letter, text in zip(LETTERS, options)]
    return "\n".join(lines + ["", INSTRUCTION])


def choice_example(path: Path, number: int, row: dict, shuffle_seed: int) -> dict:
    where = f"{path}:{number}"
    for field in REQUIRED:
        if not isinstance(row.get(field), (str, int, float)) or not str(row[field]).strip():
            raise DataError(f"{where}: a GPQA-layout row needs a non-empty '{field}'")
    key = str(row.get("id", row.get("Record ID", f"{path.stem}-{number}")))
    options, letter = shuffled_options(row, key, shuffle_seed)
    meta = {"source": str(path), **{short: str(row[f]) for f, short in META_FIELDS.items() if row.get(f)}}
    return {"id": key, "prompt": render_question(str(row["Question"]), options), "answer": letter,
            "choices": options, "meta": meta}


def load(path: str | Path, shuffle_seed: int = 0) -> list[dict]:
    from .files import read_jsonl

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"task file not found: {path}")
    examples = [choice_example(file, number, row, shuffle_seed) for number, row in read_jsonl(file)]
    ids = [e["id"] for e in examples]
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: duplicate id '{next(i for i in ids if ids.count(i) > 1)}'")
    return examples


def build(path: str, name: str | None = None, **options: Any) -> Task:
    """A GPQA-layout JSONL file as an evaluation task (split 'test'); option shuffle_seed."""
    opts = check_options(name or path, options, DEFAULTS)
    examples = load(path, int(opts["shuffle_seed"]))
    label = name or str(path)
    return Task(name=label, verifier="choice", splits=("test",),
                make=lambda split, n, seed: take(label, examples, n, seed), options=opts)
