"""Prompt formats and model cards: one renderer, and saved models that render it themselves."""

import json

import pytest

from reasonrl.tasks import r1_short_prompt, r1_zero_prompt
from reasonrl.tasks.prompts import (
    FORMAT_FILE,
    PROMPT_FORMATS,
    R1_SYSTEM,
    PromptSpec,
    build_prompt,
    chat_template,
    read_model_card,
    resolve_prompt_format,
    resolve_prompt_spec,
    write_model_card,
)

from tests.sampler.helpers import tiny_native_dir

EXAMPLE = {"prompt": "What is 47+38?", "answer": "85"}


@pytest.fixture(scope="module")
def native_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("native")
    tiny_native_dir(path)
    return path


def test_formats_render_the_training_templates():
    assert PROMPT_FORMATS == ("r1_zero", "r1_short", "plain", "chat", "r1_math")
    assert build_prompt(EXAMPLE, None, "r1_zero") == r1_zero_prompt(EXAMPLE)
    assert build_prompt(EXAMPLE, None, "r1_short", "<think>") == r1_short_prompt(EXAMPLE) + "<think>"
    assert build_prompt(EXAMPLE, None, "plain") == "What is 47+38?\n"
    # the system line is a parameter: r1_zero is r1_short with the R1-Zero instruction as system
    assert build_prompt(EXAMPLE, None, "r1_zero", system="") == r1_short_prompt(EXAMPLE)
    assert build_prompt(EXAMPLE, None, "r1_short", system="Be brief.") == "Be brief.\n" + r1_short_prompt(EXAMPLE)
    assert build_prompt(EXAMPLE, None, "plain", "A:", system="Q.") == "Q.\nWhat is 47+38?\nA:"
    with pytest.raises(ValueError, match="unknown prompt format 'r2'"):
        build_prompt(EXAMPLE, None, "r2")
    with pytest.raises(ValueError, match="needs a tokenizer with a chat template"):
        build_prompt(EXAMPLE, None, "chat")


def test_chat_format_uses_the_tokenizer_template_with_a_system_parameter(native_dir):
    from reasonrl.tokenizer import load_tokenizer

    tok = load_tokenizer(native_dir)
    assert build_prompt(EXAMPLE, tok, "chat") == f"{R1_SYSTEM}\nUser: What is 47+38?\nAssistant: "
    assert build_prompt(EXAMPLE, tok, "chat", "<think>", system="") == "User: What is 47+38?\nAssistant: <think>"


WEIRD = 'Be {{ brief }} %} "quoted" \\ Zürich\nsecond line'


@pytest.mark.parametrize("fmt", ["r1_zero", "r1_short", "plain"])
@pytest.mark.parametrize("system, prefill", [(None, ""), ("", "<think>"), (WEIRD, " <think>")])
def test_saved_chat_template_renders_exactly_the_training_prompt(fmt, system, prefill, native_dir, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    model_dir = tmp_path / "m"
    shutil.copytree(native_dir, model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    write_model_card(model_dir, fmt, tok, system=system, prefill=prefill)
    loaded = AutoTokenizer.from_pretrained(model_dir)  # plain transformers, nothing of reasonrl
    messages = [{"role": "user", "content": EXAMPLE["prompt"]}]
    text = loaded.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == build_prompt(EXAMPLE, tok, fmt, prefill, system=system)
    assert not text.startswith("<bos>")
    ids = loaded.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    assert list(ids) == tok.encode(text, add_special_tokens=False)


def test_card_is_recorded_idempotent_and_keeps_other_generation_keys(native_dir, tmp_path):
    import shutil

    from transformers import AutoTokenizer, GenerationConfig

    model_dir = tmp_path / "m"
    shutil.copytree(native_dir, model_dir)
    (model_dir / "generation_config.json").write_text(json.dumps({"temperature": 0.6, "stop_strings": ["x"]}))
    tok = AutoTokenizer.from_pretrained(model_dir)
    # older writers kept the template (with <bos>) in tokenizer_config.json: the card's must win
    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    (model_dir / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": "{{ bos_token }}old"}))
    (model_dir / "chat_template.jinja").unlink()
    spec = write_model_card(model_dir, "r1_short", tok, prefill="<think>", stop_strings=["</answer>", "\n\n\n"])
    snapshot = lambda: {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in model_dir.iterdir()}  # noqa: E731
    before = snapshot()
    assert write_model_card(model_dir, "r1_short", tok, prefill="<think>", stop_strings=["</answer>", "\n\n\n"]) == spec
    assert snapshot() == before  # idempotent: not even rewritten
    files = {name: data.decode() for name, (data, _) in before.items() if name.endswith(".json")}
    assert json.loads(files[FORMAT_FILE]) == {"prompt_format": "r1_short", "system": None, "prefill": "<think>",
                                              "stop_strings": ["</answer>", "\n\n\n"]}
    assert read_model_card(model_dir) == spec == PromptSpec("r1_short", None, "<think>", ("</answer>", "\n\n\n"))
    gen = GenerationConfig.from_pretrained(model_dir)
    answer_id = tok.convert_tokens_to_ids("</answer>")
    # a one-token stop string becomes an eos id (plain generate needs no tokenizer for it)
    assert gen.eos_token_id == [tok.eos_token_id, answer_id]
    assert (gen.pad_token_id, gen.bos_token_id, gen.temperature) == (tok.pad_token_id, tok.bos_token_id, 0.6)
    assert gen.stop_strings == ["\n\n\n"]
    assert "chat_template" not in json.loads(files["tokenizer_config.json"])
    rendered = AutoTokenizer.from_pretrained(model_dir).apply_chat_template(
        [{"role": "user", "content": "q"}], tokenize=False, add_generation_prompt=True)
    assert rendered == "User: q\nAssistant: <think>"


def test_chat_format_keeps_the_model_template(native_dir, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    model_dir = tmp_path / "m"
    shutil.copytree(native_dir, model_dir)
    before = (model_dir / "chat_template.jinja").read_text()
    write_model_card(model_dir, "chat", AutoTokenizer.from_pretrained(model_dir))
    assert (model_dir / "chat_template.jinja").read_text() == before == chat_template("r1_short")
    assert read_model_card(model_dir).prompt_format == "chat"


def test_checkpoint_and_model_dir_resolve_the_same_format(tmp_path):
    class Native:
        is_native = True

    run = tmp_path / "run"
    model, ckpt, card_ckpt = run / "model", run / "checkpoints" / "step-00000060", run / "checkpoints" / "step-2"
    for d in (model, ckpt, card_ckpt):
        d.mkdir(parents=True)
    write_model_card(model, "r1_short", None, prefill="<think>")
    write_model_card(card_ckpt, "r1_short", None, prefill="<think>")
    assert resolve_prompt_spec("auto", model, Native()) == resolve_prompt_spec("auto", card_ckpt, Native())
    # a checkpoint without a card (older runs) inherits its run's model card, not the native default
    assert resolve_prompt_spec("auto", ckpt, Native()) == resolve_prompt_spec("auto", model, Native())
    assert resolve_prompt_format("auto", ckpt, Native()) == "r1_short"
    assert resolve_prompt_format("auto", tmp_path, Native()) == "r1_zero"
    assert resolve_prompt_format("auto", tmp_path, object()) == "chat"
    # an explicit format keeps the card's prefill only when it is the recorded format
    assert resolve_prompt_spec("r1_short", model).prefill == "<think>"
    assert resolve_prompt_spec("r1_zero", model) == PromptSpec("r1_zero")


def test_broken_card_is_one_line_naming_the_file(tmp_path):
    (tmp_path / FORMAT_FILE).write_text("{not json")
    with pytest.raises(ValueError) as e:
        read_model_card(tmp_path)
    assert str(tmp_path / FORMAT_FILE) in str(e.value) and "\n" not in str(e.value)
    (tmp_path / FORMAT_FILE).write_text('{"prompt_format": "r2"}')
    with pytest.raises(ValueError, match="unknown prompt format 'r2'"):
        read_model_card(tmp_path)
    (tmp_path / FORMAT_FILE).write_text('{"prompt_format": "plain"}\n')  # what older versions wrote
    assert read_model_card(tmp_path) == PromptSpec("plain")
