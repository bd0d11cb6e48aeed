"""Supervised fine-tuning data: JSONL rows -> token ids with labels only on assistant tokens,
packed into fixed windows.

Rows are either conversations `{"messages": [{role, content}, ...]}` or prompt/response pairs
`{"prompt": question, "response": text}` (`completion` is accepted for `response`). A pair's
prompt is rendered with the model's prompt format (its card), exactly as RL and evaluation
render it, so the model learns the answer to the prompt it will be asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

IGNORE = -100  # label of tokens that carry no loss (prompt, system, user turns, padding)


def load_rows(path: str | Path) -> list[dict]:
    """The rows of an SFT JSONL file; a row of neither layout fails as `file:line: ...`."""
    from reasonrl.tasks.base import DataError
    from reasonrl.tasks.files import read_jsonl

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SFT data file not found: {path}")
    rows = []
    for number, row in read_jsonl(path):
        if "messages" in row:
            _check_messages(f"{path}:{number}", row["messages"])
        elif not isinstance(row.get("prompt"), str) or not isinstance(row.get("response", row.get("completion")), str):
            raise DataError(f"{path}:{number}: expected 'messages' or string fields 'prompt' and 'response'")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no SFT rows")
    return rows


def _check_messages(where: str, messages: Any) -> None:
    from reasonrl.tasks.base import DataError

    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") or \
                not isinstance(m.get("content"), str):
            raise DataError(f"{where}: each message needs role system|user|assistant and a string content")
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{where}: a conversation without an assistant turn has nothing to learn")


def encode_row(tokenizer, row: dict, prompt) -> tuple[list[int], list[int]]:
    """(ids, labels) of one row; `prompt` is the PromptSpec pairs are rendered with."""
    if "messages" in row:
        return _encode_messages(tokenizer, row["messages"])
    text = prompt.render({"prompt": row["prompt"]}, tokenizer)
    response = row.get("response", row.get("completion"))
    if prompt.prefill and response.startswith(prompt.prefill):
        response = response[len(prompt.prefill):]  # the rendered prompt already ends with it
    p = tokenizer(text, add_special_tokens=False)["input_ids"]
    r = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return p + r, [IGNORE] * len(p) + r


def _encode_messages(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """The chat template's rendering of the conversation; each assistant turn's own tokens (what
    the template adds for that turn after the generation prompt, end-of-turn marker included) carry
    labels. The rendering of a longer prefix must extend the shorter one (true of usual templates).
    An eos is appended to the last turn when the template writes none, so the model learns to stop."""
    def render(upto: int, generation_prompt: bool) -> list[int]:
        text = tokenizer.apply_chat_template(messages[:upto], tokenize=False, add_generation_prompt=generation_prompt)
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    ids: list[int] = []
    labels: list[int] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before, after = render(i, True), render(i + 1, False)
        if before[:len(ids)] != ids or after[:len(before)] != before:
            raise ValueError("the chat template does not render conversations prefix-stably; "
                             "use prompt/response rows instead")
        turn = after[len(before):]
        labels += [IGNORE] * (len(before) - len(ids)) + turn
        ids = list(after)
    if tokenizer.eos_token_id not in labels:
        ids, labels = ids + [tokenizer.eos_token_id], labels + [tokenizer.eos_token_id]
    return ids, labels


def pack(documents: list[tuple[list[int], list[int]]], seq_len: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate documents and cut windows of seq_len + 1 tokens: (ids, labels), each
    (n, seq_len + 1); the last window is padded with labels IGNORE. Documents in one window attend
    to each other (no block mask), as in plain packed pretraining; labels keep the loss on each
    document's own assistant tokens."""
    ids = [t for doc, _ in documents for t in doc]
    labels = [t for _, lab in documents for t in lab]
    width = seq_len + 1
    n = max(1, -(-(len(ids) - 1) // seq_len))
    total = (n - 1) * seq_len + width
    ids += [pad_id] * (total - len(ids))
    labels += [IGNORE] * (total - len(labels))
    stream, label_stream = torch.tensor(ids), torch.tensor(labels)
    starts = torch.arange(n) * seq_len
    index = starts[:, None] + torch.arange(width)  # (n, seq_len + 1)
    return stream[index], label_stream[index]


def pad_each(documents: list[tuple[list[int], list[int]]], seq_len: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One document per row, truncated to seq_len + 1 tokens and right-padded (packing off)."""
    width = seq_len + 1
    ids = torch.full((len(documents), width), pad_id, dtype=torch.long)
    labels = torch.full((len(documents), width), IGNORE, dtype=torch.long)
    for row, (doc, lab) in enumerate(documents):
        doc, lab = doc[:width], lab[:width]
        ids[row, :len(doc)] = torch.tensor(doc)
        labels[row, :len(lab)] = torch.tensor(lab)
    return ids, labels
