"""`reasonrl sample`: parser, streaming generation, clear errors."""

import argparse

import pytest

from reasonrl.stages import sample

from tests.sampler.helpers import tiny_qwen2


def _parser():
    parser = argparse.ArgumentParser(prog="reasonrl")
    sample.add_parser(parser.add_subparsers(dest="command"))
    return parser


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from reasonrl.tokenizer import train_tokenizer

    path = tmp_path_factory.mktemp("model")
    texts = ["what is two plus two? four. " * 3, "the quick brown fox jumps over the lazy dog. " * 3] * 20
    train_tokenizer(texts, 300, path)
    tiny_qwen2(vocab=512).save_pretrained(path)
    return path


def test_help_lists_sampling_options(capsys):
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(["sample", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--prompt", "--chat", "--temperature", "--top-p", "--top-k", "--stop", "--seed", "--max-new-tokens",
                 "--prompt-format", "--system", "--prefill", "--show-prompt", "--no-recorded-stops"):
        assert flag in text


def test_streams_generated_text(model_dir, capsys):
    args = _parser().parse_args(["sample", str(model_dir), "--prompt", "what is two", "--max-new-tokens", "8",
                                 "--temperature", "0", "--ignore-eos"])
    assert sample.run(args) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() and "tokens/s" in captured.err


def test_chat_and_several_samples(model_dir, capsys):
    args = _parser().parse_args(["sample", str(model_dir), "--prompt", "hi", "--chat", "--n", "2",
                                 "--max-new-tokens", "4", "--seed", "1"])
    assert sample.run(args) == 0
    assert capsys.readouterr().out.count("--- sample") == 2


def test_wrong_path_is_one_line_exit_2(tmp_path, capsys):
    args = _parser().parse_args(["sample", str(tmp_path / "nope"), "--prompt", "x"])
    assert sample.run(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == f"reasonrl: error: model directory not found: {tmp_path / 'nope'}"


def test_corrupt_config_is_one_line_naming_the_file(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{oops")
    args = _parser().parse_args(["sample", str(tmp_path), "--prompt", "x"])
    assert sample.run(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "config.json") in err[0]


@pytest.fixture(scope="module")
def carded_dir(tmp_path_factory):
    from reasonrl.tasks.prompts import write_model_card
    from tests.sampler.helpers import tiny_native_dir

    path = tmp_path_factory.mktemp("carded")
    write_model_card(path, "r1_short", tiny_native_dir(path), prefill="<think>", stop_strings=["</answer>", "zz"])
    return path


def _sample(capsys, monkeypatch, *argv):
    """Run `reasonrl sample` and return (stdout, rendered prompt, the stop strings passed to generate)."""
    import reasonrl.sampler

    seen = {}
    real = reasonrl.sampler.generate

    def spy(policy, prompts, **kwargs):
        seen.update(prompt=prompts[0], stops=kwargs["stop_strings"])
        return real(policy, prompts, **kwargs)

    monkeypatch.setattr(reasonrl.sampler, "generate", spy)
    args = _parser().parse_args(["sample", *argv, "--max-new-tokens", "6", "--temperature", "0", "--show-prompt"])
    assert sample.run(args) == 0
    captured = capsys.readouterr()
    assert f"[prompt]\n{seen['prompt']}\n[/prompt]" in captured.err
    return captured.out, seen["prompt"], seen["stops"]


def test_recorded_prompt_format_prefill_and_stops_are_the_default(carded_dir, capsys, monkeypatch):
    out, prompt, stops = _sample(capsys, monkeypatch, str(carded_dir), "--prompt", "What is 2+2?")
    assert prompt == "User: What is 2+2?\nAssistant: <think>" and stops == ["</answer>", "zz"]
    explicit = _sample(capsys, monkeypatch, str(carded_dir), "--prompt", "What is 2+2?", "--prompt-format",
                       "r1_short", "--prefill", "<think>", "--stop", "zz", "--stop", "!")
    assert explicit[:2] == (out, prompt) and explicit[2] == ["</answer>", "zz", "!"]
    _, prompt, stops = _sample(capsys, monkeypatch, str(carded_dir), "--prompt", "What is 2+2?", "--prompt-format",
                               "r1_zero", "--system", "Be brief.", "--no-recorded-stops")
    assert prompt == "Be brief.\nUser: What is 2+2?\nAssistant: " and stops is None
    _, prompt, _ = _sample(capsys, monkeypatch, str(carded_dir), "--prompt", "2+2=", "--prompt-format", "raw")
    assert prompt == "2+2="
    chat = _sample(capsys, monkeypatch, str(carded_dir), "--prompt", "hi", "--chat", "--system", "")
    # chat renders the saved template: the card's, which opens the answer with the prefill already
    assert chat[1] == "User: hi\nAssistant: <think>" and chat == _sample(
        capsys, monkeypatch, str(carded_dir), "--prompt", "hi", "--prompt-format", "chat", "--system", "",
        "--prefill", "<think>")


def test_model_without_a_card_samples_the_raw_prompt(model_dir, capsys, monkeypatch):
    _, prompt, stops = _sample(capsys, monkeypatch, str(model_dir), "--prompt", "what is two")
    assert prompt == "what is two" and stops is None


def test_native_checkpoint_with_speculative_decoding(tmp_path, capsys):
    from reasonrl.model import create
    from reasonrl.tokenizer import train_tokenizer

    train_tokenizer(["one two three four five six seven eight nine ten. " * 4] * 20, 300, tmp_path)
    create("tiny", seed=0).save_pretrained(tmp_path)
    args = _parser().parse_args(["sample", str(tmp_path), "--prompt", "one two", "--max-new-tokens", "6",
                                 "--temperature", "0", "--speculative", "--ignore-eos"])
    assert sample.run(args) == 0
    assert "acceptance" in capsys.readouterr().err
