"""Corpus building shared by the stages: tokenizers for task text, packed token windows."""

from __future__ import annotations

from pathlib import Path

import torch


def ensure_tokenizer(directory: Path, texts: list[str], vocab_size: int, path: str | None = None):
    """Load the tokenizer at `path` (if given) or `directory`; train it there on `texts` if absent.

    Written once per run, before any checkpoint, so a resumed run reuses exactly the same vocabulary.
    """
    from reasonrl.tokenizer import load_tokenizer, train_tokenizer

    if path:
        if not (Path(path) / "tokenizer_config.json").is_file() and not (Path(path) / "tokenizer.json").is_file():
            raise FileNotFoundError(f"tokenizer.path: no tokenizer files in {path!r} (expected a directory with "
                                    "tokenizer.json or tokenizer_config.json)")
        return load_tokenizer(path)
    from reasonrl.ranks import is_main_process
    from reasonrl.train.distributed import barrier

    if (directory / "tokenizer.json").is_file():
        return load_tokenizer(directory)
    if is_main_process():  # under torchrun rank 0 trains it (deterministic) and the others load its files
        tmp = directory.with_name(directory.name + ".tmp")
        train_tokenizer(texts, vocab_size, tmp)
        tmp.replace(directory)
    barrier()
    return load_tokenizer(directory)


def encode_documents(tokenizer, pairs: list[tuple[str, str]]) -> list[list[int]]:
    """(prompt, completion) pairs -> ids: prompt and completion are encoded separately, exactly as
    the sampler sees them, then the eos token closes the document."""
    prompts = tokenizer([p for p, _ in pairs], add_special_tokens=False)["input_ids"]
    completions = tokenizer([c for _, c in pairs], add_special_tokens=False)["input_ids"]
    return [p + c + [tokenizer.eos_token_id] for p, c in zip(prompts, completions)]


def pack_windows(documents: list[list[int]], seq_len: int) -> torch.Tensor:
    """Concatenate documents and cut windows of seq_len + 1 tokens (inputs and shifted labels)."""
    stream = torch.tensor([t for doc in documents for t in doc], dtype=torch.long)
    n = (len(stream) - 1) // seq_len
    if n < 1:
        raise ValueError(f"corpus of {len(stream)} tokens is shorter than one window of {seq_len + 1}")
    starts = torch.arange(n) * seq_len
    return stream[starts[:, None] + torch.arange(seq_len + 1)]  # (n, seq_len + 1)


def batch_indices(n_items: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Rows of step `step`: epoch-wise permutations derived from (seed, epoch), so any step's batch
    is known without replaying earlier ones (resume draws what an uninterrupted run would)."""
    from reasonrl.seeding import seed_for

    per_epoch = max(n_items // batch_size, 1)
    epoch, offset = divmod(step, per_epoch)
    order = torch.randperm(n_items, generator=torch.Generator().manual_seed(seed_for(seed, epoch, "data")))
    return order[offset * batch_size:(offset + 1) * batch_size]
