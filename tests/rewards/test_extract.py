import pytest

from reasonrl.rewards.extract import (after_hashes, answer_is, answer_tag, extract_answer,
                                      last_boxed, last_code_block, strip_math_delimiters)


def test_answer_tag_takes_last_pair():
    assert answer_tag("<answer>1</answer> then <answer> 2 </answer>") == "2"
    assert answer_tag("<answer>unclosed") is None


def test_last_boxed_nested_braces():
    text = "first \\boxed{1} then \\boxed{\\frac{a}{b^{2}}} end"
    assert last_boxed(text) == "\\frac{a}{b^{2}}"
    assert last_boxed("\\boxed {7}") == "7"
    assert last_boxed("\\fbox{x}") == "x"
    assert last_boxed("\\boxed{unbalanced") is None


def test_hashes_and_answer_is():
    assert after_hashes("work\n#### 1,234\nextra") == "1,234"
    assert answer_is("So The answer is: 42.") == "42"
    assert answer_is("the answer is (B) because\nmore") == "(B) because"
    assert answer_is("no phrase here") is None
    assert answer_is("The final answer is: **10**.") == "10"


def test_order_is_configurable_and_answer_tag_may_hold_boxed():
    text = "\\boxed{1} #### 2\n<answer>$\\boxed{3}$</answer>"
    assert extract_answer(text) == "3"
    assert extract_answer(text, ["hashes"]) == "2"
    assert extract_answer(text, "boxed,hashes") == "3"  # last \boxed is the one in the tag
    assert extract_answer("nothing") is None
    with pytest.raises(ValueError):
        extract_answer(text, ["nope"])


def test_strip_math_delimiters():
    assert strip_math_delimiters("$x$") == "x"
    assert strip_math_delimiters("\\(\\frac12\\)") == "\\frac12"
    assert strip_math_delimiters("$") == "$"


def test_last_code_block_skips_other_languages():
    text = "```python\na = 1\n```\nprose\n```bash\nls\n```\n```py\nb = 2\n```\n```\nunclosed"
    assert last_code_block(text) == "b = 2\n"
    assert last_code_block("```bash\nls\n```") is None
    assert last_code_block("```python\nx = 1\n```\ntext\n```bash\nls\n```") == "x = 1\n"


def test_extractors_are_linear_on_hostile_input():
    import time
    hostile = "\\boxed{" * 200_000 + "<answer>" * 100_000 + "####" * 100_000
    start = time.perf_counter()
    extract_answer(hostile)
    last_code_block("```" * 200_000)
    assert time.perf_counter() - start < 2.0
