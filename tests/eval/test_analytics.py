"""Reflection words, language mixing and length statistics on crafted texts."""

import pytest

from reasonrl.eval.analytics import (
    R1_REFLECTION_WORDS,
    STRICT_REFLECTION_WORDS,
    chain_of_thought,
    foreign_words,
    language_mixing_rate,
    reflection_counts,
    reflection_density,
    reflection_rate,
    response_length_stats,
)

TEXT = (
    "Wait, but I made a mistake. Let me check again.\n"
    "Butter is not but. I will double-check and\nCHECK   again; checking is not counted."
)


def test_r1_reflection_counts_whole_words_any_case():
    c = reflection_counts([TEXT])
    # wait 1; but: "but I", "not but." (not "Butter") = 2; mistake 1;
    # check: "check again", "CHECK again" = 2 ("double-check" is one word, "checking" another)
    assert (c["wait"], c["but"], c["mistake"], c["check"]) == (1, 2, 1, 2)
    assert c["verify"] == 0 and set(c) == set(R1_REFLECTION_WORDS)


def test_strict_pool_counts_phrases_across_whitespace():
    c = reflection_counts([TEXT], STRICT_REFLECTION_WORDS)
    # "check again" twice (one with a run of spaces), "double-check" once
    assert c["check again"] == 2 and c["double-check"] == 1
    assert sum(c.values()) == 3


def test_reflection_rate_is_fraction_of_responses():
    texts = ["Wait.", "no reflection here", "However, x = 2.", "butter"]
    assert reflection_rate(texts) == pytest.approx(0.5)
    assert reflection_rate(texts, STRICT_REFLECTION_WORDS) == 0.0
    assert reflection_rate([]) == 0.0


def test_reflection_density_per_1000_words():
    # 2 hits in 4 words -> 500 per 1000 words
    assert reflection_density(["wait wait hello world"]) == pytest.approx(500.0)
    assert reflection_density([""]) == 0.0


def test_chain_of_thought():
    assert chain_of_thought("<think>a b</think> answer") == "a b"
    assert chain_of_thought("already open</think><answer>5</answer>") == "already open"
    assert chain_of_thought("no tags") == "no tags"
    assert chain_of_thought("intro <think>open<answer>5</answer>") == "open"


def test_language_mixing():
    texts = [
        "The answer is 5.",
        "Let me 计算 this sum.",  # Chinese inside an English CoT
        "Let $\\alpha = \\pi r^2$ be the area; π and θ are notation.",
        "<think>all English</think> 答案",  # foreign text only after the CoT
    ]
    assert language_mixing_rate(texts) == pytest.approx(0.25)
    assert language_mixing_rate(texts, cot_only=False) == pytest.approx(0.5)
    assert foreign_words("Ответ: yes", "en") == ["Ответ"]
    assert foreign_words("答案是 x 等于 five", "zh") == ["five"]
    with pytest.raises(ValueError, match="unknown target"):
        language_mixing_rate(["x"], target="xx")


def test_response_length_stats():
    s = response_length_stats([10, 20, 40], [True, False, 1])
    assert s == pytest.approx(
        {"length/mean": 70 / 3, "length/max": 40.0, "length/correct": 25.0, "length/incorrect": 20.0}
    )
    s = response_length_stats([10, 30], [1, 1])
    assert "length/incorrect" not in s and s["length/correct"] == 20.0
    assert response_length_stats([5, 7]) == {"length/mean": 6.0, "length/max": 7.0}
    with pytest.raises(ValueError):
        response_length_stats([1, 2], [True])


# Mixed-script completions: Latin + CJK, Latin + Cyrillic, with and without <think> tags.
MIXED = [
    "<think>the sum is 加法 so four</think><answer>4</answer>",
    "<think>all English here</think><answer>четыре</answer>",  # foreign only after the CoT
    "<think>сначала add the numbers</think><answer>4</answer>",
    "no tags: we compute 二 plus 二",
    "<think>unclosed CoT with $\\alpha$ and π<answer>4 答</answer>",
    "<think>1 + 1 = 2</think><answer>2</answer>",  # no words at all
    "reasoning after a prefilled tag, Ответ: 4</think><answer>4</answer>",
]


@pytest.mark.parametrize("prefill", ["", "<think>\n", "<think>\nLet me think: "])
def test_language_reward_and_mixing_rate_agree(prefill):
    # Both use reasonrl.text: for every response, mixed <=> reward < 1 (reward None: not mixed),
    # and reward = 1 - |foreign words| / |words| of the same chain of thought. Over a batch,
    # lang_mix_rate = fraction of responses with reward < 1; for one response
    # lang_mix_rate = 1 - floor(reward) (reward in [0, 1]).
    from reasonrl.rewards import get_verifier
    from reasonrl.text import language_words

    reward = get_verifier("language", prefill=prefill)
    rewards = [reward(t, {}) for t in MIXED]
    for text, r in zip(MIXED, rewards):
        cot = chain_of_thought(prefill + text)
        words, foreign = language_words(cot), foreign_words(cot)
        assert r == (None if not words else pytest.approx(1 - len(foreign) / len(words)))
        mixed = language_mixing_rate([text], prefill=prefill)
        assert mixed == (0.0 if r is None else 1.0 - (r == 1.0))
    below_one = sum(1 for r in rewards if r is not None and r < 1) / len(MIXED)
    assert language_mixing_rate(MIXED, prefill=prefill) == pytest.approx(below_one)
    assert below_one == pytest.approx(4 / 7)  # rows 0, 2, 3, 6; CJK after the CoT does not count
