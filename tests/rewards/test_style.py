import pytest

from reasonrl.rewards import get_verifier

GOOD = "<think>\nreason\n</think>\n<answer>\n4\n</answer>"


@pytest.mark.parametrize("text, strict, soft", [
    (GOOD, 1.0, 1.0),
    ("  " + GOOD + "\n", 1.0, 1.0),
    (GOOD + " trailing", 0.0, 1.0),
    ("intro " + GOOD, 0.0, 1.0),
    ("<think>a</think> words <answer>4</answer>", 0.0, 1.0),
    ("<think>a</think><think>b</think><answer>4</answer>", 0.0, 1.0),
    ("<answer>4</answer><think>a</think>", 0.0, 0.0),
    ("<think>a</think>", 0.0, 0.0),
])
def test_format_strict_and_soft(text, strict, soft):
    assert get_verifier("format")(text, {}) == strict
    assert get_verifier("format", mode="soft")(text, {}) == soft


def test_format_counts_the_prefilled_prefix():
    completion = "reason\n</think>\n<answer>4</answer>"
    assert get_verifier("format")(completion, {}) == 0.0
    assert get_verifier("format")(completion, {"prefill": "<think>\n"}) == 1.0
    assert get_verifier("format", prefill="<think>")(completion, {}) == 1.0
    # the option wins over the example field
    assert get_verifier("format", prefill="")(completion, {"prefill": "<think>"}) == 0.0


def test_tag_count_quarter_per_tag_seen_once():
    tags = get_verifier("tag_count")
    assert tags(GOOD, {}) == 1.0
    assert tags("<think>a</think>", {}) == 0.5
    assert tags("<think><think>a</think><answer>", {}) == 0.5  # <think> twice earns nothing
    assert tags("a</think><answer>1</answer>", {"prefill": "<think>"}) == 1.0
    assert tags("plain", {}) == 0.0


def test_language_fraction_of_cot_words():
    lang = get_verifier("language")
    # 3 English words + 2 Chinese characters (each a word) = 3/5 in English
    assert lang("<think>the sum is 加法</think><answer>4</answer>", {}) == pytest.approx(3 / 5)
    assert get_verifier("language", language="zh")("<think>the sum is 加法</think>", {}) == pytest.approx(2 / 5)
    # target from the example; the answer part is not chain of thought
    assert lang("<think>сумма</think><answer>four</answer>", {"meta": {"language": "ru"}}) == 1.0
    # unclosed think: everything before <answer>; numbers and symbols are not words
    assert lang("<think>one two 3 + 4 = 7 три<answer>x", {}) == pytest.approx(2 / 3)
    assert lang("<think>1 + 1 = 2</think>", {}) is None
    assert lang("reasoning</think>", {"prefill": "<think>"}) == 1.0


@pytest.mark.parametrize("length, expected", [
    (0, 0.0), (3000, 0.0), (3072, 0.0),        # <= Lmax - Lcache = 4096 - 1024
    (3073, -1 / 1024), (3584, -0.5), (4096, -1.0),  # ((Lmax - Lcache) - |y|) / Lcache
    (4097, -1.0), (10_000, -1.0),
])
def test_overlong_formula(length, expected):
    overlong = get_verifier("overlong", max_len=4096, cache_len=1024)
    assert overlong("", {"completion_tokens": length}) == pytest.approx(expected)


def test_overlong_length_sources():
    assert get_verifier("overlong", max_len=10, cache_len=4, length=8)("", {}) == pytest.approx(-0.5)
    assert get_verifier("overlong")("text", {}) is None
    with pytest.raises(ValueError):
        get_verifier("overlong", max_len=10, cache_len=20)("", {"completion_tokens": 1})
