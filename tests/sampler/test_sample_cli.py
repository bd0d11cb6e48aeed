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
    for flag in ("--prompt", "--chat", "--temperature", "--top-p", "--top-k", "--stop", "--seed", "--max-new-tokens"):
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
    assert len(err) == 1 and "model not found" in err[0]


def test_native_checkpoint_with_speculative_decoding(tmp_path, capsys):
    from reasonrl.model import create
    from reasonrl.tokenizer import train_tokenizer

    train_tokenizer(["one two three four five six seven eight nine ten. " * 4] * 20, 300, tmp_path)
    create("tiny", seed=0).save_pretrained(tmp_path)
    args = _parser().parse_args(["sample", str(tmp_path), "--prompt", "one two", "--max-new-tokens", "6",
                                 "--temperature", "0", "--speculative", "--ignore-eos"])
    assert sample.run(args) == 0
    assert "acceptance" in capsys.readouterr().err
