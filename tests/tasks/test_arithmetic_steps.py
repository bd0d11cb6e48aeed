"""The arithmetic step check reads the corpus's column format back and checks every step."""

import pytest

from reasonrl.tasks import get_task, r1_completion
from reasonrl.tasks.arithmetic_steps import check_steps, diagnose


def ex(operands, ops):
    return {"answer": "", "meta": {"operands": operands, "ops": ops, "step_check": "arithmetic"}}


def r1(chain, answer):
    return f"<think>{chain}</think><answer>{answer}</answer>"


ADD = ex([47, 38], "+")


@pytest.mark.parametrize("completion", [
    r1("7+8=15 write 5 carry 1, 4+3+1=8 write 8", 85),
    r1("8+7=15 write 5 carry 1, 1+4+3=8 write 8", 85),          # addends in another order
    "7+8=15 write 5 carry 1, 4+3+1=8 write 8</think><answer>85</answer>",  # prefill '<think>' not in the text
    "7+8=15  write 5 carry 1,4+3+1=8 write 8\nAnswer: 85",         # plain format, loose spacing
    "<think>7+8=15 write 5 carry 1, 4+3+1=8 write 8</think>",        # no answer: the steps still check
])
def test_a_right_chain_passes(completion):
    assert diagnose(completion, ADD) == (True, "every step checks")


@pytest.mark.parametrize("completion, why", [
    # the carry is announced but dropped from the tens, and the tens sum is wrong: the answer is right
    (r1("7+8=15 write 5 carry 1, 4+3=8 write 8", 85), "tens: adds 4+3 but the column holds 4+3+1"),
    # the carry is never written down but used anyway: right answer, wrong step
    (r1("7+8=15 write 5, 4+3+1=8 write 8", 85), "units: carry 0 where the column gives carry 1"),
    # the corpus's own corrupted solution (a forgotten carry) reaching its consistent wrong answer
    (r1("7+8=15 write 5, 4+3=7 write 7", 75), "units: carry 0 where the column gives carry 1"),
    (r1("7+8=14 write 4 carry 1, 4+3+1=8 write 8", 85), "units: 7+8 is not 14"),
    (r1("7+8=15 write 6 carry 1, 4+3+1=8 write 8", 86), "units: writes 6 where the column gives 5"),
    (r1("7+8=15 write 5 carry 1, 4+3+1=8 write 8", 84), "answers '84' but the written digits make 85"),
    (r1("7+8=15 write 5 carry 1, 4+3+", 85), "unreadable column '4+3+'"),
    (r1("7+8=15 write 5 carry 1", 85), "the tens column is missing"),
    (r1("7+8=15 write 5 carry 1, 4+3+1=8 write 8, write 1", 185), "3 columns written where the problem has 2"),
    (r1("7+8=15 write 5 borrow 1, 4+3+1=8 write 8", 85), "'borrow' where a carry belongs"),
])
def test_a_false_step_is_flagged_even_with_the_right_answer(completion, why):
    assert diagnose(completion, ADD) == (False, why)


@pytest.mark.parametrize("completion", [
    r1("I think it is 85", 85), r1("", 85), "85", "",
])
def test_nothing_recognisable_is_not_checkable(completion):
    assert check_steps(completion, ADD) is None


def test_examples_of_other_tasks_are_not_checkable():
    assert check_steps(r1("7+8=15 write 5", 5), {"answer": "5", "meta": {"source": "gsm8k"}}) is None


def test_final_carry_column():
    example = ex([57, 68], "+")
    assert check_steps(r1("7+8=15 write 5 carry 1, 5+6+1=12 write 2 carry 1, write 1", 125), example)
    assert diagnose(r1("7+8=15 write 5 carry 1, 5+6+1=12 write 2", 125), example) == (
        False, "tens: carry 0 where the column gives carry 1")
    assert diagnose(r1("7+8=15 write 5 carry 1, 5+6+1=12 write 2 carry 1", 125), example) == (
        False, "the carry 1 out of the last column is never written")


def test_many_terms_and_uneven_widths():
    assert check_steps(r1("7+8+2=17 write 7 carry 1, 4+3+1+1=9 write 9", 97), ex([47, 38, 12], "++"))
    assert check_steps(r1("5+7=12 write 2 carry 1, 2+1=3 write 3, write 1", 132), ex([125, 7], "+"))


def test_subtraction_borrows():
    example = ex([85, 19], "-")
    assert check_steps(r1("15-9=6 write 6 borrow 1, 8-1-1=6 write 6", 66), example)
    # borrowed in the units but never paid back in the tens (the corpus's corrupted form)
    assert diagnose(r1("15-9=6 write 6, 8-1=7 write 7", 76), example)[0] is False
    # right answer, but the borrow is not shown where it is taken
    assert diagnose(r1("15-9=6 write 6, 8-1-1=6 write 6", 66), example) == (
        False, "units: borrow 0 where the column gives borrow 1")
    assert diagnose(r1("5-9=6 write 6 borrow 1, 8-1-1=6 write 6", 66), example) == (
        False, "units: computes 5-9 where the column needs 15-9")


def test_several_steps_check_headers_and_results():
    example = ex([47, 38, 19], "+-")
    chain = ("47+38: 7+8=15 write 5 carry 1, 4+3+1=8 write 8 = 85; "
             "85-19: 15-9=6 write 6 borrow 1, 8-1-1=6 write 6 = 66")
    assert check_steps(r1(chain, 66), example)
    assert diagnose(r1(chain.replace("= 85;", "= 86;"), 66), example) == (
        False, "47+38: claims 86 but its columns make 85")
    assert diagnose(r1(chain.replace("85-19", "84-19"), 66), example) == (
        False, "step 84-19 where the problem needs 85-19")
    assert diagnose(r1(chain.split("; ")[0], 85), example) == (False, "1 steps written where the problem has 2")


def test_multiplication_table_facts_and_columns():
    example = ex([3, 4, 5], "**")
    assert check_steps(r1("3*4=12; 12*5: 2*5=10 write 0 carry 1, 1*5+1=6 write 6 = 60", 60), example)
    assert diagnose(r1("3*4=13; 12*5: 2*5=10 write 0 carry 1, 1*5+1=6 write 6 = 60", 60), example) == (
        False, "3*4 is not 13")
    # the carry of 2*5 dropped in the tens; the header still claims the right product
    assert diagnose(r1("3*4=12; 12*5: 2*5=10 write 0 carry 1, 1*5=6 write 6 = 60", 60), example) == (
        False, "tens: '1*5' where the column needs 1*5+1")


@pytest.mark.parametrize("options", [{}, {"digits": 3, "terms": 3}, {"terms": 3, "ops": "+-"}, {"ops": "-"},
                                     {"digits": 1, "terms": 4, "ops": "*"}, {"digits": 1, "terms": 12}])
def test_every_corpus_solution_checks_and_every_corrupted_one_fails(options):
    task = get_task("arithmetic", corpus_error_rate=0.5, **options)
    assert task.step_check is check_steps
    examples = task.examples("train", n=80)
    assert any(e["meta"]["corrupted"] for e in examples)
    for example in examples:
        assert check_steps(r1_completion(example), example) is (not example["meta"]["corrupted"]), example


def test_hostile_completions_are_checked_in_linear_time():
    import time

    hostile = ["<answer>" * 2400, "1+" * 9000 + "=", "7+8=15 write 5, " * 1200, "47+38: " + "x" * 19000 + " = 8",
               "9" * 19990 + "write 1", "Answer:" * 2800]
    start = time.perf_counter()
    for text in hostile:
        assert check_steps(text, ADD) in (None, False)
    assert check_steps("7+8=15 write 5 carry 1, " * 200_000, ADD) is None  # past the length cap: not read
    assert time.perf_counter() - start < 1.0
