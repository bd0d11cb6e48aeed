"""SFT data: labels only on assistant tokens, packing keeps every label, bad rows fail with file:line."""

import json

import pytest
import torch

from reasonrl.tasks.prompts import PromptSpec
from reasonrl.train.sft_data import IGNORE, encode_row, load_rows, pack, pad_each


class CharTokenizer:
    """One token per character (ord), eos = 1: enough to check which positions carry labels."""

    eos_token_id, pad_token_id = 1, 0

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        text = "".join(f"<{m['role']}>{m['content']}" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")


def test_pair_labels_are_the_response_and_eos_only():
    tok = CharTokenizer()
    ids, labels = encode_row(tok, {"prompt": "2+2", "response": "=4"}, PromptSpec("r1_short"))
    prompt = "User: 2+2\nAssistant: "
    assert ids == [ord(c) for c in prompt] + [ord("="), ord("4"), 1]
    assert labels == [IGNORE] * len(prompt) + [ord("="), ord("4"), 1]


def test_prefill_is_not_learned_twice():
    tok = CharTokenizer()
    ids, labels = encode_row(tok, {"prompt": "q", "response": "<t>x"}, PromptSpec("r1_short", prefill="<t>"))
    assert "".join(chr(i) for i in ids if i > 1).endswith("Assistant: <t>x")
    assert [chr(t) for t in labels if t not in (IGNORE, 1)] == ["x"]


def test_messages_learn_every_assistant_turn_and_nothing_else():
    tok = CharTokenizer()
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "B"},
                {"role": "user", "content": "c"}, {"role": "assistant", "content": "D"}]
    ids, labels = encode_row(tok, {"messages": messages}, PromptSpec("chat"))
    learned = [chr(t) if t != 1 else "<eos>" for t in labels if t != IGNORE]
    assert learned == ["B", "D", "<eos>"]  # this template writes no end-of-turn: eos closes the last turn
    assert len(ids) == len(labels)


def test_messages_with_the_project_template_learn_content_and_eos(tmp_path):
    from reasonrl.tokenizer import train_tokenizer

    tok = train_tokenizer(["User: what is 2+2\nAssistant: 4"] * 20, 300, tmp_path / "tok")
    messages = [{"role": "user", "content": "what is 2+2"}, {"role": "assistant", "content": "4"}]
    ids, labels = encode_row(tok, {"messages": messages}, PromptSpec("chat"))
    learned = [t for t in labels if t != IGNORE]
    assert tok.decode(learned[:-2]) == "4" and learned[-2] == tok.eos_token_id  # then the template's newline
    prompt = tok.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert ids[:labels.index(learned[0])] == tok(prompt, add_special_tokens=False)["input_ids"]


def test_pack_keeps_every_label_once_and_pads_the_tail():
    docs = [([5, 6, 7], [IGNORE, 6, 7]), ([8, 9], [IGNORE, 9])]
    ids, labels = pack(docs, seq_len=3, pad_id=0)
    assert ids.shape == labels.shape == (2, 4)
    # windows overlap by one token (the next window's first input is this one's last target)
    targets = torch.cat([labels[0, 1:], labels[1, 1:]])
    assert sorted(t for t in targets.tolist() if t != IGNORE) == [6, 7, 9]
    assert ids[-1, -1] == 0 and labels[-1, -1] == IGNORE
    rows, row_labels = pad_each(docs, seq_len=3, pad_id=0)
    assert rows.tolist() == [[5, 6, 7, 0], [8, 9, 0, 0]] and row_labels[1].tolist() == [IGNORE, 9, IGNORE, IGNORE]


def test_bad_rows_fail_with_file_and_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"prompt": "q", "response": "r"}) + "\n" + json.dumps({"prompt": "q"}) + "\n")
    with pytest.raises(ValueError, match=r"d.jsonl:2: expected 'messages' or string fields"):
        load_rows(path)
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(ValueError, match="d.jsonl:1: a conversation without an assistant turn"):
        load_rows(path)
