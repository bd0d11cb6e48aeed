import pytest

from reasonrl.rewards import get_verifier


def test_math_equivalence_and_argument_order():
    math = get_verifier("math")
    assert math("so \\boxed{0.5}", {"answer": "\\frac{1}{2}"}) == 1.0
    assert math("<answer>(3, \\pi/2)</answer>", {"answer": "\\left( 3, \\frac{\\pi}{2} \\right)"}) == 1.0
    assert math("\\boxed{19}", {"answer": "18"}) == 0.0
    assert math("no answer at all", {"answer": "18"}) == 0.0
    assert math("\\boxed{1}", {}) is None
    # gold is an interval; a bare number inside it is not the same answer
    assert math("\\boxed{1}", {"answer": "[0, 2]"}) == 0.0


def test_math_extract_option():
    math = get_verifier("math", extract="hashes")
    assert math("\\boxed{3}\n#### 4", {"answer": "4"}) == 1.0
    assert math("\\boxed{4}", {"answer": "4"}) == 0.0


def test_exact_match_normalises_case_space_and_delimiters():
    exact = get_verifier("exact")
    assert exact("<answer> $\\text{Yes}$ </answer>", {"answer": "yes"}) == 1.0
    assert exact("<answer>New   York.</answer>", {"answer": "new york"}) == 1.0
    assert exact("<answer>no</answer>", {"answer": "yes"}) == 0.0
    assert get_verifier("exact", case_sensitive=True)("<answer>Yes</answer>", {"answer": "yes"}) == 0.0


def test_numeric_match():
    numeric = get_verifier("numeric")
    assert numeric("#### $1,234", {"answer": "1234"}) == 1.0
    assert numeric("\\boxed{\\frac{3}{4}}", {"answer": "0.75"}) == 1.0
    assert numeric("\\boxed{50\\%}", {"answer": "50"}) == 1.0
    assert numeric("\\boxed{0.7500001}", {"answer": "0.75"}) == 1.0  # within 1e-6 relative
    assert numeric("\\boxed{0.751}", {"answer": "0.75"}) == 0.0
    assert numeric("\\boxed{abc}", {"answer": "3"}) == 0.0
    assert numeric("\\boxed{3}", {"answer": "x+1"}) is None


def test_choice_letters_and_option_text():
    choice = get_verifier("choice")
    example = {"answer": "C", "choices": ["red", "green", "blue", "black"]}
    assert choice("<answer>(C)</answer>", example) == 1.0
    assert choice("the answer is C. blue", example) == 1.0
    assert choice("<answer>blue</answer>", example) == 1.0
    assert choice("<answer>\\text{C}</answer>", example) == 1.0
    assert choice("<answer>B</answer>", example) == 0.0
    assert choice("<answer>I think D</answer>", example) == 0.0  # "I" is not an option
    assert choice("<answer>E</answer>", example) == 0.0
    assert choice("<answer>A</answer>", {"answer": "red", "choices": ["red", "blue"]}) == 1.0


def test_reasoning_gym_scorer():
    import reasoning_gym

    entry = reasoning_gym.create_dataset("basic_arithmetic", size=1, seed=3)[0]
    example = {"answer": entry["answer"], "meta": {"rg": entry, "rg_dataset": "basic_arithmetic"}}
    rg = get_verifier("reasoning_gym")
    assert rg(f"<answer>{entry['answer']}</answer>", example) == 1.0
    assert rg("<answer>definitely wrong</answer>", example) == 0.0
    assert rg("<answer>1</answer>", {"answer": "1"}) is None
    # the dataset name may also come from the entry's own metadata
    del example["meta"]["rg_dataset"]
    assert rg(f"<answer>{entry['answer']}</answer>", example) == 1.0


def test_unknown_verifier_and_option_are_rejected():
    with pytest.raises(KeyError):
        get_verifier("nope")
    with pytest.raises(TypeError):
        get_verifier("format", mdoe="soft")


def test_task_sets_extraction_order_through_meta():
    numeric = get_verifier("numeric")
    text = "<answer>7</answer>\n#### 8"
    assert numeric(text, {"answer": "7"}) == 1.0  # default order: answer tag first
    assert numeric(text, {"answer": "8", "meta": {"extract": "hashes,boxed"}}) == 1.0
    # the verifier option wins over the task's meta
    assert get_verifier("numeric", extract="answer_tag")(text, {"answer": "7", "meta": {"extract": "hashes"}}) == 1.0
