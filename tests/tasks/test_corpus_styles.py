"""Corpus styles of the arithmetic task: surface forms, foreign-script steps, self-checks, and the
tag format as a minority of the pretraining documents."""

import hashlib
import json
import random
from collections import Counter

import pytest

from reasonrl.config import ConfigError, load_config
from reasonrl.eval.analytics import language_mixing_rate, reflection_rate
from reasonrl.rewards.style import language_consistency
from reasonrl.stages.pretrain import PretrainConfig, corpus_documents
from reasonrl.tasks import get_task, mixed_completions, plain_completion, r1_completion
from reasonrl.tasks.arithmetic import CorpusStyle, _example, _Slips, render_steps, solve_steps
from reasonrl.tasks.arithmetic_steps import check_steps, diagnose

STYLED = dict(corpus_error_rate=0.7, surface_forms=3, foreign_step_rate=0.1, self_check_rate=0.3, verify_rate=0.2)


def text(operands, ops, form="write", language=None, slips=None):
    steps, _ = solve_steps(operands, ops, slips)
    return render_steps(steps, form, (lambda: language) if language else None)


@pytest.mark.parametrize("operands, ops, form, language, expected", [
    ([47, 38], "+", "write", None, "7+8=15 write 5 carry 1, 4+3+1=8 write 8"),
    ([47, 38], "+", "words", None, "7 plus 8 is 15, put down 5, carry the 1. 4 plus 3 plus 1 is 8, put down 8"),
    ([47, 38], "+", "compact", None, "units: 7+8=15 -> 5 c1, tens: 4+3+1=8 -> 8"),
    ([47, 38], "+", "write", "ru", "семь плюс восемь = 15, пишем 5, перенос 1, "
                                   "четыре плюс три плюс один = 8, пишем 8"),
    ([47, 38], "+", "write", "zh", "7加8得15，写5进1, 4加3加1得8，写8"),
    ([57, 68], "+", "compact", None, "units: 7+8=15 -> 5 c1, tens: 5+6+1=12 -> 2 c1, hundreds: -> 1"),
    ([85, 19], "-", "words", None, "15 minus 9 is 6, put down 6, borrow the 1. 8 minus 1 minus 1 is 6, put down 6"),
    ([85, 19], "-", "compact", None, "units: 15-9=6 -> 6 b1, tens: 8-1-1=6 -> 6"),
    ([85, 19], "-", "write", "ru", "пятнадцать минус девять = 6, пишем 6, заём 1, восемь минус один минус один = 6, "
                                   "пишем 6"),
    ([3, 4, 5], "**", "words", None, "3 times 4 is 12; 12*5: 2 times 5 is 10, put down 0, carry the 1. "
                                     "1 times 5 plus 1 is 6, put down 6 = 60"),
    ([12, 5], "*", "write", "zh", "2乘5得10，写0进1, 1乘5加1得6，写6"),
])
def test_each_form_writes_the_same_columns(operands, ops, form, language, expected):
    written = text(operands, ops, form, language)
    assert written == expected
    example = {"answer": "", "meta": {"operands": operands, "ops": ops}}
    assert diagnose(written, example) == (True, "every step checks")


@pytest.mark.parametrize("form, expected", [
    ("write", "7+8=15 write 5, wait, 7+8=15, so carry 1, 4+3+1=8 write 8"),
    ("words", "7 plus 8 is 15, put down 5, wait, 7 plus 8 is 15, so carry the 1. 4 plus 3 plus 1 is 8, put down 8"),
    ("compact", "units: 7+8=15 -> 5, check: units 7+8=15 -> c1, tens: 4+3+1=8 -> 8"),
])
def test_a_forgotten_carry_caught_by_a_self_check(form, expected):
    corrected = text([47, 38], "+", form, slips=_Slips(0, correct=True))
    assert corrected == expected
    assert diagnose(f"<think>{corrected}</think><answer>85</answer>", ADD) == (True, "every step checks")
    # the same slip without its self-check is the corpus's uncorrected error
    assert check_steps(f"<think>{text([47, 38], '+', form, slips=_Slips(0))}</think><answer>75</answer>", ADD) is False


def test_a_corrected_and_a_verified_example():
    style = CorpusStyle(self_check_rate=1.0, verify_rate=1.0)
    corrected = _example([47, 38], "+", random.Random(0), 1.0, style)
    assert corrected["solution"] == "7+8=15 write 5, wait, 7+8=15, so carry 1, 4+3+1=8 write 8"
    assert corrected["meta"] == {
        "source": "arithmetic", "operands": [47, 38], "ops": "+", "has_carry": True, "corrupted": False,
        "solution_answer": "85", "step_check": "arithmetic", "form": "write", "foreign_steps": 0,
        "self_check": "corrected"}
    verified = _example([47, 38], "+", random.Random(0), 0.0, style)
    assert verified["solution"] == "7+8=15 write 5 carry 1, 4+3+1=8 write 8. check: 47+38=85 ok"
    assert verified["meta"]["self_check"] == "verified"
    assert check_steps(r1_completion(verified), verified) is True


ADD = {"answer": "85", "meta": {"operands": [47, 38], "ops": "+"}}


@pytest.mark.parametrize("reasoning, why", [
    ("7 plus 8 is 14, put down 4, carry the 1. 4 plus 3 plus 1 is 8, put down 8", "units: 7+8 is not 14"),
    ("7 plus 8 is 15, put down 5. 4 plus 3 is 7, put down 7", "units: carry 0 where the column gives carry 1"),
    ("units: 7+8=15 -> 5 c1, units: 4+3+1=8 -> 8", "tens: labelled 'units'"),
    ("units: 7+8=15 -> 5 b1, tens: 4+3+1=8 -> 8", "'borrow' where a carry belongs"),
    ("семь плюс семь = 15, пишем 5, перенос 1, четыре плюс три плюс один = 8, пишем 8",
     "units: adds 7+7 but the column holds 7+8"),
    ("семь плюс восемь = 15, пишем 5, перенос 1, четыре плюс три = 8, пишем 8", "tens: adds 4+3 but the column holds 4+3+1"),
    ("7加8得15，写6进1, 4加3加1得8，写8", "units: writes 6 where the column gives 5"),
    ("7+8=15 write 5, wait, 7+8=15, so carry 2, 4+3+1=8 write 8", "units: carry 2 where the column gives carry 1"),
    ("7+8=15 write 5, wait, 7+8=14, so carry 1, 4+3+1=8 write 8", "units: 7+8 is not 14"),
    ("7+8=15 write 5, wait, 7+8=15, so carry 1, 4+3=7 write 7", "tens: adds 4+3 but the column holds 4+3+1"),
    ("7+8=15 write 5 carry 1, 4+3+1=8 write 8. check: 47+38=86 ok", "the check claims 86 but the written digits make 85"),
    ("7+8=15 write 5 carry 1, 4+3+1=8 write 8. check: 38+47=85 ok", "the check 38+47 is not the problem 47+38"),
])
def test_a_false_step_in_any_form_is_flagged(reasoning, why):
    assert diagnose(f"<think>{reasoning}</think><answer>85</answer>", ADD) == (False, why)


@pytest.mark.parametrize("completion", [
    "7+8=15 write 5 carry 1, 4+3+1=8 write 8\nThe answer is 85.",
    "units: 7+8=15 -> 5 c1, tens: 4+3+1=8 -> 8\nAnswer: 85",
    "7 plus 8 is 15, put down 5, carry the 1. 4 plus 3 plus 1 is 8, put down 8.\nThe answer is 85.",
    "7加8得15，写5进1, 4+3+1=8 write 8\nAnswer: 85",  # forms mixed within one chain
])
def test_plain_endings_and_mixed_forms_check(completion):
    assert diagnose(completion, ADD) == (True, "every step checks")
    assert check_steps(completion.replace("85", "84"), ADD) is False


@pytest.mark.parametrize("opts", [
    dict(digits=2), dict(digits=3, terms=3, ops="+-"), dict(digits=1, terms=3, ops="*"),
    dict(digits=1, terms=4, ops="+-"), dict(digits=4, terms=3, ops="-"),
])
def test_every_styled_solution_checks_unless_its_slip_is_left_uncorrected(opts):
    task = get_task("arithmetic", **opts, **STYLED | {"foreign_step_rate": 0.3})
    for example in task.examples("train", 100, seed=1):
        assert check_steps(r1_completion(example), example) is (not example["meta"]["corrupted"]), example


def test_rates_hold_over_2000_examples():
    train = get_task("arithmetic", **STYLED).examples("train", 2000, seed=0)
    metas = [e["meta"] for e in train]
    forms = Counter(m["form"] for m in metas)
    assert all(abs(forms[f] / 2000 - 1 / 3) < 0.04 for f in ("write", "words", "compact"))
    columns = sum(len(solve_steps(m["operands"], m["ops"])[0][0].columns) for m in metas)
    assert abs(sum(m["foreign_steps"] for m in metas) / columns - 0.1) < 0.015
    slipped = [m for m in metas if m["corrupted"] or m["self_check"] == "corrected"]
    assert abs(len(slipped) / sum(m["has_carry"] for m in metas) - 0.7) < 0.04
    assert abs(sum(m["self_check"] == "corrected" for m in slipped) / len(slipped) - 0.3) < 0.04
    clean = [m for m in metas if m not in slipped]
    assert abs(sum(m["self_check"] == "verified" for m in clean) / len(clean) - 0.2) < 0.04


def test_the_language_detector_flags_exactly_the_solutions_with_a_foreign_step():
    train = get_task("arithmetic", **STYLED).examples("train", 500, seed=0)
    completions = [r1_completion(e) for e in train]
    foreign = [e["meta"]["foreign_steps"] > 0 for e in train]
    assert 0.1 < sum(foreign) / len(train) < 0.4
    assert [language_consistency(c, e) < 1 for c, e in zip(completions, train)] == foreign
    assert language_mixing_rate(completions) == sum(foreign) / len(train)
    assert language_mixing_rate([r1_completion(e) for e in get_task("arithmetic").examples("train", 200)]) == 0.0


def test_the_reflection_metric_counts_self_checks():
    train = get_task("arithmetic", **STYLED).examples("train", 500, seed=0)
    checked = [e["solution"] for e in train if e["meta"]["self_check"]]
    unchecked = [e["solution"] for e in train if not e["meta"]["self_check"]]
    assert checked and reflection_rate(checked) == 1.0
    assert reflection_rate(unchecked) == 0.0
    default = get_task("arithmetic", corpus_error_rate=0.7).examples("train", 500, seed=0)
    assert reflection_rate([e["solution"] for e in default]) == 0.0


# sha256 of the examples the corpus gave before it had styles: the defaults must not move them
ORIGINAL_DIGESTS = [
    ({"corpus_error_rate": 0.7}, "train", 500, 0, "36ffe252e541ecab"),
    ({"digits": 2, "terms": 3, "ops": "+-", "corpus_error_rate": 0.5}, "train", 300, 1, "995adaa0a91136ba"),
    ({"digits": 1, "terms": 3, "ops": "*", "corpus_error_rate": 0.5}, "train", 200, 2, "7f906578d3b7ab73"),
    ({}, "dev", 100, 0, "897d09d1346ed44b"),
]


@pytest.mark.parametrize("opts, split, n, seed, digest", ORIGINAL_DIGESTS)
def test_default_styles_give_the_original_corpus(opts, split, n, seed, digest):
    examples = get_task("arithmetic", **opts).examples(split, n, seed=seed)
    assert hashlib.sha256(json.dumps(examples, sort_keys=True).encode()).hexdigest()[:16] == digest
    explicit = dict(surface_forms=1, foreign_step_rate=0.0, self_check_rate=0.0, verify_rate=0.0)
    assert get_task("arithmetic", **opts, **explicit).examples(split, n, seed=seed) == examples


def test_styles_shape_train_solutions_only():
    assert get_task("arithmetic", **STYLED).examples("dev", 50) == get_task("arithmetic").examples("dev", 50)


@pytest.mark.parametrize("option, value", [
    ("surface_forms", 0), ("surface_forms", 4), ("surface_forms", 1.5),
    ("foreign_step_rate", -0.1), ("self_check_rate", 1.5), ("verify_rate", "0.2"),
])
def test_bad_style_options_fail(option, value):
    with pytest.raises(ValueError, match=option):
        get_task("arithmetic", **{option: value})


def test_tag_fraction_makes_the_tag_format_a_minority():
    train = get_task("arithmetic", corpus_error_rate=0.5).examples("train", 2000, seed=0)
    completions = mixed_completions(train, 0.3, seed=0)
    assert completions == mixed_completions(train, 0.3, seed=0)
    assert sum(c.startswith("<think>") for c in completions) == 600
    endings = Counter(c.rsplit("\n", 1)[-1].split(" ")[0] for c in completions if not c.startswith("<think>"))
    assert abs(endings["Answer:"] / 1400 - 0.5) < 0.05 and endings["Answer:"] + endings["The"] == 1400
    assert mixed_completions(train, 1.0) == [r1_completion(e) for e in train]
    assert plain_completion(train[0], 1) == f"{train[0]['solution']}\nThe answer is {train[0]['meta']['solution_answer']}."


def test_pretrain_documents_keep_their_prompt_and_mix_the_completion():
    train = get_task("arithmetic").examples("train", 100, seed=0)
    docs = corpus_documents(train, "r1_short", 0.3, seed=0)
    assert all(prompt == f"User: {e['prompt']}\nAssistant: " for (prompt, _), e in zip(docs, train))
    assert sum(completion.startswith("<think>") for _, completion in docs) == 30
    assert all(check_steps(completion, e) for (_, completion), e in zip(docs, train))
    with pytest.raises(ValueError, match="tag_fraction"):
        corpus_documents(train, "plain", 0.5)


@pytest.mark.parametrize("value", ["-0.1", "1.5"])
def test_tag_fraction_is_bounded(value):
    with pytest.raises(ConfigError, match="tag_fraction"):
        load_config(PretrainConfig, overrides=[f"data.tag_fraction={value}"])
    assert load_config(PretrainConfig).data.tag_fraction == 1.0


@pytest.mark.parametrize("language", ["ru", "zh", None])
@pytest.mark.parametrize("form", ["write", "words", "compact"])
def test_carries_past_9_read_back_in_every_form(form, language):
    operands, ops = [9] * 12, "+" * 11  # units 108: a carry of 10 enters the tens column
    written = text(operands, ops, form, language)
    assert diagnose(written, {"meta": {"operands": operands, "ops": ops}}) == (True, "every step checks")


@pytest.mark.parametrize("completion", [
    "put down 1. " * 1600, "units: -> 1, " * 1500, "wait, 7+8=15, so carry 1, " * 700, "семь плюс " * 1900,
])
def test_long_adversarial_chains_are_read_in_linear_time(completion):
    import time

    start = time.perf_counter()
    assert check_steps(completion, ADD) in (False, None)
    assert time.perf_counter() - start < 1.0
