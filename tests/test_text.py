"""Scripts, words, notation and the chain-of-thought cut shared by rewards and metrics."""

import pytest

from reasonrl.text import (
    chain_of_thought,
    char_script,
    foreign_words,
    language_words,
    script_words,
    strip_math,
    target_fraction,
)


def test_char_script():
    assert [char_script(c) for c in "aé中かカ한дαب"] == [
        "latin", "latin", "han", "kana", "kana", "hangul", "cyrillic", "greek", "arabic"]
    assert char_script("Ａ") == "latin"  # fullwidth
    assert char_script("3") is None and char_script(" ") is None and char_script("+") is None


def test_script_words_split_on_scripts_and_count_han_per_character():
    assert script_words("abcдеф x") == [("latin", "abc"), ("cyrillic", "деф"), ("latin", "x")]
    assert script_words("中文ok") == [("han", "中"), ("han", "文"), ("latin", "ok")]
    assert script_words("नमस्ते 42") == [("devanagari", "नमस्ते")]  # vowel signs stay in the word


def test_strip_math_spans_and_commands():
    assert strip_math("a $x^2$ b $$y$$ c \\(z\\) d \\[w\\] e \\frac12") == "a   b   c   d   e  12"
    assert strip_math("costs $5 and more") == "costs $5 and more"  # no closing $: not math
    assert strip_math("$a$ then $b") == "  then $b"


def test_notation_is_not_language():
    text = "Let $\\alpha = \\pi r^2$ be the area; π and θ are notation, x is a variable."
    assert foreign_words(text, "en") == []
    assert ("latin", "x") not in language_words(text, "en")
    assert foreign_words("λόγος", "en") == [] and foreign_words("λόγος", "el") == []
    assert foreign_words("答案是 x 等于 five", "zh") == ["five"]
    with pytest.raises(ValueError, match="unknown target"):
        foreign_words("x", "xx")


def test_chain_of_thought_cut():
    assert chain_of_thought("<think>a</think><answer>b</answer>") == "a"
    assert chain_of_thought("prefilled</think><answer>b</answer>") == "prefilled"
    assert chain_of_thought("<think>unclosed<answer>b</answer>") == "unclosed"
    assert chain_of_thought("no tags at all") == "no tags at all"


def test_target_fraction():
    assert target_fraction("the sum is 加法", "en") == pytest.approx(3 / 5)
    assert target_fraction("the sum is 加法", "han") == pytest.approx(2 / 5)
    assert target_fraction("1 + 1 = 2", "en") is None
