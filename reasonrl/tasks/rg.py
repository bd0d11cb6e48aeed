"""reasoning-gym datasets as tasks: `rg:<dataset name>`, options passed to the dataset's config.

reasoning-gym generates item i of a dataset from `seed + i`, so datasets built with different
seeds share items. Train, dev and test therefore use different seeds AND a hash split of the
question text: a test (or dev) question can never be one of the train questions, whatever the
seeds and sizes. The text is hashed as it is: reasoning-gym questions have no canonical form
this adapter could know, so only exact repeats are caught.
"""

from __future__ import annotations

from typing import Any

from .base import DEFAULT_SIZE, GENERATED_SPLITS, Task, split_of

# Items inspected per example asked for, before giving up on a dataset with too few questions.
SCAN_FACTOR = 40
SPLIT_SEED_OFFSET = {"train": 0, "dev": 3_967_000, "test": 7_919_000}


def _dataset(name: str, seed: int, size: int, config: dict[str, Any]):
    import reasoning_gym  # heavy and optional: imported only when an rg task is used

    try:
        return reasoning_gym.create_dataset(name, seed=seed, size=size, **config)
    except TypeError as exc:
        bad = str(exc).rsplit("'", 2)[-2] if str(exc).count("'") >= 2 else str(exc)
        raise ValueError(f"unknown option '{bad}' for task 'rg:{name}' ({exc})") from exc
    except ValueError as exc:
        raise ValueError(f"task 'rg:{name}': {exc}") from exc


def _example(name: str, split: str, index: int, entry: dict) -> dict:
    return {
        "id": f"rg-{name}-{split}-{index}",
        "prompt": entry["question"],
        "answer": "" if entry.get("answer") is None else str(entry["answer"]),
        "meta": {"source": f"rg:{name}", "rg_dataset": name, "rg": entry},
    }


def _make(name: str, config: dict[str, Any], split: str, n: int | None, seed: int) -> list[dict]:
    want = DEFAULT_SIZE if n is None else n
    scan = SCAN_FACTOR * want + 1000
    dataset = _dataset(name, seed * 1_000_003 + SPLIT_SEED_OFFSET[split], scan, config)
    out: list[dict] = []
    seen: set[str] = set()
    for index in range(scan):
        if len(out) == want:
            return out
        entry = dataset[index]
        question = entry["question"]
        if question in seen or split_of(f"rg:{name}|{question}") != split:
            continue
        seen.add(question)
        out.append(_example(name, split, index, entry))
    if len(out) < want:
        raise ValueError(f"task 'rg:{name}': found only {len(out)} distinct '{split}' questions of the "
                         f"{want} asked for in {scan} generated items; ask for fewer")
    return out


def build(name: str, **config: Any) -> Task:
    """Task for reasoning-gym dataset `name`; `config` goes to the dataset's config class."""
    if not name:
        raise ValueError("task 'rg:': give a reasoning-gym dataset name, e.g. rg:chain_sum")
    _dataset(name, 0, 1, config)  # fail now on an unknown dataset or option, not at first use
    return Task(name=f"rg:{name}", verifier="reasoning_gym", splits=GENERATED_SPLITS,
                make=lambda split, n, seed: _make(name, config, split, n, seed), options=dict(config))
