"""A byte-level BPE tokenizer trained locally on task text, saved in the Hugging Face format.

Digits are always split one per token (column arithmetic needs to see single digits), every
byte is in the base alphabet so any text round-trips exactly, and `<think>`, `</think>`,
`<answer>`, `</answer>` are single tokens. They are added as *non-special* tokens so that
`decode(..., skip_special_tokens=True)` keeps them (format rewards read them); `<pad>`, `<bos>`
and `<eos>` are special.

Chat format (also the Jinja chat template saved with the tokenizer; it is the `r1_short` prompt
format of reasonrl.tasks.prompts, so a one-turn generation prompt is exactly the training prompt):

    {system}\n                 (only if there is a system message)
    User: {user}\n
    Assistant: {assistant}<eos>\n
    ...
    Assistant:                 (with a trailing space: the generation prompt)

No `<bos>`: neither pretraining documents nor RL prompts start with one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from reasonrl.tasks.prompts import ASSISTANT_PREFIX, USER_PREFIX, chat_template

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
TAGS = ("<think>", "</think>", "<answer>", "</answer>")
SPECIAL_TOKENS = (PAD, BOS, EOS)

CHAT_TEMPLATE = chat_template("r1_short")


def _without_markup(texts: Iterable[str]) -> Iterator[str]:
    # Special and tag tokens are whole tokens already: merges learned on their characters would
    # only waste vocabulary.
    for text in texts:
        for token in SPECIAL_TOKENS + TAGS:
            text = text.replace(token, "\n")
        yield text


def _train_raw(texts: Iterable[str], vocab_size: int):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(TAGS),
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_without_markup(texts), trainer=trainer)
    tokenizer.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in TAGS])
    return tokenizer


def train_tokenizer(texts: Iterable[str], vocab_size: int, out_dir: str | Path):
    """Train on `texts`, save the HF files to `out_dir` and return the loaded fast tokenizer.

    The vocabulary holds at most `vocab_size` tokens (fewer if the texts allow no more merges):
    3 special tokens, the 256 byte tokens, merges and the 4 tags.
    """
    from transformers import PreTrainedTokenizerFast

    minimum = len(SPECIAL_TOKENS) + 256 + len(TAGS)
    if vocab_size < minimum:
        raise ValueError(f"vocab_size must be at least {minimum} (specials + 256 bytes + tags), got {vocab_size}")
    raw = _train_raw(texts, vocab_size)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        clean_up_tokenization_spaces=False, chat_template=CHAT_TEMPLATE,
    )
    tokenizer.save_pretrained(str(out_dir))
    # Recent transformers keep these in tokenizer_config.json only; older loaders read this file.
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD}
    (Path(out_dir) / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    return load_tokenizer(out_dir)


def load_tokenizer(path: str | Path):
    """`transformers.AutoTokenizer.from_pretrained(path)`."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def _encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def render_chat(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> tuple[list[int], list[int]]:
    """Token ids of `messages` in the chat format and a loss mask (1 on assistant content + its eos).

    Text between assistant turns is encoded as one piece, so a prompt's ids equal
    `apply_chat_template(..., add_generation_prompt=True)`; each assistant content is encoded on
    its own, exactly as a sampler's completion tokens follow the prompt.
    """
    ids: list[int] = []
    mask: list[int] = []
    pending = ""
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "system":
            pending += f"{content}\n"
        elif role == "user":
            pending += f"{USER_PREFIX}{content}\n"
        elif role == "assistant":
            prompt_ids = _encode(tokenizer, pending + ASSISTANT_PREFIX)
            answer_ids = _encode(tokenizer, content) + [tokenizer.eos_token_id]
            ids += prompt_ids + answer_ids
            mask += [0] * len(prompt_ids) + [1] * len(answer_ids)
            pending = "\n"
        else:
            raise ValueError(f"unknown chat role '{role}' (expected system, user or assistant)")
    tail = _encode(tokenizer, pending + (ASSISTANT_PREFIX if add_generation_prompt else ""))
    return ids + tail, mask + [0] * len(tail)
