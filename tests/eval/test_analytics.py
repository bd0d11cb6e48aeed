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


# ------------------------------------------------------------------------------------------------
# analytics over a run (hand-made metrics and samples rows)

from reasonrl.eval.analytics import (  # noqa: E402
    detect_aha,
    format_error_by_step,
    length_curves,
    process_curves,
    reflection_by_step,
    series,
    solve_rate_history,
    solve_rate_summary,
)


def _rows(reflection, accuracy):
    return [{"step": i + 1, "stage": "rl", "reflection_rate": r, "accuracy": a}
            for i, (r, a) in enumerate(zip(reflection, accuracy))]


def test_aha_found_at_the_step_where_reflection_and_accuracy_rise_together():
    refl = [0.05] * 10 + [0.08, 0.10, 0.20, 0.22, 0.25, 0.30] + [0.3] * 4
    acc = [0.2] * 10 + [0.25, 0.3, 0.15, 0.4, 0.5, 0.6] + [0.6] * 4
    # step 13 has 4x reflection but worse accuracy: the aha step is 14 (both hold from there on)
    res = detect_aha(_rows(refl, acc))
    assert res.status == "aha" and res.step == 14
    assert res.reflection_early == pytest.approx(0.05) and res.threshold == pytest.approx(0.15)
    assert res.accuracy_early == pytest.approx(0.2) and res.accuracy_at == pytest.approx(0.4)
    assert "aha moment at step 14" in res.verdict
    assert detect_aha(_rows(refl, acc), sustain=1).step == 14
    assert detect_aha(_rows(refl, acc), factor=5.0).step == 15  # 5 x 0.05 = 0.25


def test_no_aha_when_reflection_stays_near_its_early_level():
    res = detect_aha(_rows([0.1, 0.12, 0.11, 0.15, 0.2, 0.25, 0.2], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]))
    assert res.status == "none" and res.step is None
    assert "no aha moment" in res.verdict and "0.250" in res.verdict


def test_vacuous_when_no_reflection_word_ever_appears():
    res = detect_aha(_rows([0.0] * 20, [i / 20 for i in range(20)]))
    assert res.status == "vacuous"
    assert "no reflection words appear at any step" in res.verdict and "self-check vocabulary" in res.verdict
    assert detect_aha(_rows([0.0, 0.005, 0.0], [0, 0, 0])).status == "vacuous"


def test_floor_keeps_a_start_at_zero_from_making_any_word_a_rise():
    refl = [0.0] * 10 + [0.03, 0.04, 0.03, 0.04]  # 0 early; 3 x floor 0.02 = 0.06 never reached
    assert detect_aha(_rows(refl, [0.1] * 10 + [0.5] * 4)).status == "none"


def test_reflection_rising_without_accuracy():
    refl = [0.05] * 10 + [0.3] * 10
    res = detect_aha(_rows(refl, [0.5] * 10 + [0.4] * 10))
    assert res.status == "reflection_without_accuracy" and res.step == 11
    assert "reflection rose without accuracy" in res.verdict
    no_acc = [{"step": i + 1, "reflection_rate": r} for i, r in enumerate(refl)]
    res = detect_aha(no_acc)
    assert res.status == "reflection_without_accuracy" and "no accuracy was logged" in res.verdict


def test_aha_no_data_and_missing_keys():
    assert detect_aha([]).status == "no_data"
    assert detect_aha([{"step": 1, "loss": 2.0}]).status == "no_data"
    rows = [{"step": 1, "kl": 0.1}, {"step": 2, "kl": None}, {"kl": 0.3}, {"step": 3, "kl": float("nan")}]
    assert series(rows, "kl") == ([1.0], [0.1])


def test_length_and_process_curves_only_for_logged_keys():
    rows = [{"step": 1, "length/mean": 10, "length/correct": 8}, {"step": 2, "length/mean": 12},
            {"step": 2, "process/cot_valid_rate": 0.5}]
    assert length_curves(rows) == {"length/mean": ([1.0, 2.0], [10.0, 12.0]), "length/correct": ([1.0], [8.0])}
    assert process_curves(rows) == {"process/cot_valid_rate": ([2.0], [0.5])}


SAMPLES = [
    {"step": 1, "id": "a", "completion": "<think>x</think><answer>1</answer>", "reward": 1.5,
     "rewards": {"accuracy": 1.0, "format": 1.0}},
    {"step": 1, "id": "a", "completion": "Wait, 2", "reward": 0.0, "rewards": {"accuracy": 0.0, "format": 0.0}},
    {"step": 1, "id": "b", "completion": "let me recheck <answer>3</answer>", "reward": 0.0, "rewards": {}},
    {"step": 5, "id": "a", "completion": "<answer>1</answer> but", "reward": 1.0, "rewards": {"accuracy": 1.0}},
    {"step": 5, "id": "a", "completion": "<answer>1</answer>", "reward": 1.0, "rewards": {"accuracy": 1.0}},
    {"step": 5, "id": "b", "completion": "no tag, wait", "reward": 0.0, "rewards": {"accuracy": 0.0}},
    {"model": "base", "id": "a", "sample": 0, "completion": "eval row", "verdict": True},  # evaluation stage row
]


def test_reflection_and_format_errors_from_samples():
    assert reflection_by_step(SAMPLES) == ([1.0, 5.0], [pytest.approx(1 / 3), pytest.approx(2 / 3)])
    assert reflection_by_step(SAMPLES, STRICT_REFLECTION_WORDS) == ([1.0, 5.0], [pytest.approx(1 / 3), 0.0])
    # step 1: format reward 0 once; the third has no format reward but a complete answer span
    # step 5: no format rewards; one completion lacks the answer tag
    assert format_error_by_step(SAMPLES) == ([1.0, 5.0], [pytest.approx(1 / 3), pytest.approx(1 / 3)])


def test_solve_rate_history_and_summary():
    hist = solve_rate_history(SAMPLES)
    assert hist == {"a": [(1.0, 0.5), (5.0, 1.0)], "b": [(1.0, 0.0), (5.0, 0.0)]}
    assert solve_rate_summary(hist) == {"prompts": 2, "sampled_twice": 2, "learned": 1, "regressed": 0,
                                        "always_solved": 0, "never_solved": 1}
