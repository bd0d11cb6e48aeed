import json

import pytest

from reasonrl.tasks import corpus_text, get_task
from reasonrl.tokenizer import CHAT_TEMPLATE, load_tokenizer, render_chat, train_tokenizer

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 47+38?"},
    {"role": "assistant", "content": "<think>7+8=15 write 5 carry 1, 4+3+1=8 write 8</think><answer>85</answer>"},
    {"role": "user", "content": "And 2+2?"},
    {"role": "assistant", "content": "Four"},
]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    examples = get_task("arithmetic").examples("train", n=300)
    texts = [corpus_text(e, t) for e in examples for t in ("plain", "r1")] + ["Hello world, how are you?"] * 5
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(texts, 400, out)
    return out


@pytest.fixture(scope="module")
def tok(tok_dir):
    return load_tokenizer(tok_dir)


def test_saved_in_hf_format(tok_dir, tok):
    from transformers import AutoTokenizer

    assert {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} <= {p.name for p in tok_dir.iterdir()}
    assert json.loads((tok_dir / "special_tokens_map.json").read_text())["eos_token"] == "<eos>"
    again = AutoTokenizer.from_pretrained(str(tok_dir))
    assert again.chat_template == CHAT_TEMPLATE
    assert len(tok) <= 400


@pytest.mark.parametrize("text", [
    "What is 47+38?",
    "  two  spaces\n\nnewlines\ttab ",
    "<think>7+8=15 write 5 carry 1</think><answer>85</answer>",
    "unseen: Zürich 東京 🙂 {x} \\frac{1}{2}",
])
def test_round_trip(tok, text):
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert tok.decode(ids, skip_special_tokens=True) == text  # tags are not "special": kept


def test_digits_are_single_tokens(tok):
    assert tok.convert_ids_to_tokens(tok.encode(" 2024", add_special_tokens=False)) == ["Ġ", "2", "0", "2", "4"]
    assert len(tok.encode("1234567890", add_special_tokens=False)) == 10


def test_special_and_tag_tokens_are_single_ids(tok):
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    for token in ("<think>", "</think>", "<answer>", "</answer>", "<eos>"):
        ids = tok.encode(token, add_special_tokens=False)
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids) == [token]
    assert tok.encode("hi", add_special_tokens=True) == tok.encode("hi", add_special_tokens=False)
    assert tok.decode([1] + tok.encode("hi", add_special_tokens=False) + [2], skip_special_tokens=True) == "hi"


def test_chat_template_text(tok):
    assert tok.apply_chat_template(MESSAGES[1:3], tokenize=False) == (
        "User: What is 47+38?\nAssistant: <think>7+8=15 write 5 carry 1, 4+3+1=8 write 8</think>"
        "<answer>85</answer><eos>\n")
    assert tok.apply_chat_template(MESSAGES[:2], tokenize=False, add_generation_prompt=True) == (
        "Be brief.\nUser: What is 47+38?\nAssistant: ")


def test_chat_template_one_turn_is_the_r1_short_training_prompt(tok):
    # no <bos>: pretraining documents and RL prompts never start with one
    from reasonrl.tasks.prompts import build_prompt

    rendered = tok.apply_chat_template(MESSAGES[1:2], tokenize=False, add_generation_prompt=True)
    assert rendered == build_prompt({"prompt": MESSAGES[1]["content"]}, tok, "r1_short")
    ids, _ = render_chat(tok, MESSAGES[1:2], add_generation_prompt=True)
    assert ids == tok.encode(rendered, add_special_tokens=False) and tok.bos_token_id not in ids


def test_render_chat_matches_template_and_masks_assistant(tok):
    ids, mask = render_chat(tok, MESSAGES)
    assert len(ids) == len(mask)
    assert tok.decode(ids) == tok.apply_chat_template(MESSAGES, tokenize=False)
    masked = [i for i, m in zip(ids, mask) if m]
    expected = MESSAGES[2]["content"] + "<eos>" + MESSAGES[4]["content"] + "<eos>"
    assert tok.decode(masked) == expected
    assert ids[-1] == tok.encode("\n", add_special_tokens=False)[0] and mask[-1] == 0


def test_render_chat_prompt_equals_template_ids(tok):
    ids, mask = render_chat(tok, MESSAGES[:2], add_generation_prompt=True)
    expected = tok.apply_chat_template(MESSAGES[:2], add_generation_prompt=True, tokenize=True)
    expected = expected["input_ids"] if hasattr(expected, "keys") else expected
    assert ids == list(expected) and set(mask) == {0}


def test_errors(tmp_path, tok):
    with pytest.raises(ValueError, match="vocab_size must be at least 263"):
        train_tokenizer(["a"], 100, tmp_path)
    with pytest.raises(ValueError, match="unknown chat role 'tool'"):
        render_chat(tok, [{"role": "tool", "content": "x"}])
