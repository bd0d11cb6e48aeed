import json

import pytest

from reasonrl.tasks import DataError, get_task


def write(path, lines):
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return str(path)


def test_user_file_fields_are_normalised(tmp_path):
    path = write(tmp_path / "mine.jsonl", [
        {"prompt": "2+2?", "answer": 4},
        {"question": "What is 54/2?", "answer": 27.0, "solution": "half of 54"},
        "",
        {"problem": "Name it.", "answer": "x", "id": "q9", "meta": {"level": 3}},
    ])
    task = get_task(path, verifier="exact")
    assert task.verifier == "exact" and task.splits == ("train", "test")
    examples = task.examples("train")
    assert examples == [
        {"id": "mine-1", "prompt": "2+2?", "answer": "4", "meta": {"source": path, "verifier": "exact"}},
        {"id": "mine-2", "prompt": "What is 54/2?", "answer": "27", "meta": {"source": path, "verifier": "exact"},
         "solution": "half of 54"},
        {"id": "q9", "prompt": "Name it.", "answer": "x", "meta": {"source": path, "level": 3, "verifier": "exact"}},
    ]
    assert task.examples("test") == examples  # test_fraction=0: the whole file serves any split
    assert get_task(path).verifier == "math"


@pytest.mark.parametrize("bad, message", [
    ('{"prompt": "a", "answer": ', "3: invalid JSON"),
    ('[1, 2]', "3: expected a JSON object, got list"),
    ({"prompt": "a"}, "3: needs an 'answer' field"),
    ({"answer": "1"}, "3: needs a non-empty string field 'prompt'"),
    ({"prompt": "a", "answer": "1", "meta": 5}, "3: 'meta' must be an object"),
])
def test_malformed_line_names_file_and_line(tmp_path, bad, message):
    path = write(tmp_path / "bad.jsonl", [{"prompt": "ok", "answer": "1"}, "", bad])
    with pytest.raises(DataError) as info:
        get_task(path)
    assert str(info.value) == f"{path}:{message}" or str(info.value).startswith(f"{path}:{message}")
    assert isinstance(info.value, ValueError)


def test_test_fraction_splits_disjointly(tmp_path):
    path = write(tmp_path / "many.jsonl", [{"prompt": f"q{i}", "answer": str(i)} for i in range(200)])
    task = get_task(path, test_fraction=0.25)
    train, test = task.examples("train"), task.examples("test")
    assert len(train) + len(test) == 200 and 25 < len(test) < 75
    assert not {e["prompt"] for e in train} & {e["prompt"] for e in test}


def test_missing_file_and_unknown_option(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        get_task(str(tmp_path / "nope.jsonl"))
    path = write(tmp_path / "one.jsonl", [{"prompt": "a", "answer": "1"}])
    with pytest.raises(ValueError, match="unknown option 'verfier'"):
        get_task(path, verfier="exact")


@pytest.mark.parametrize("tests, message", [
    ([{"input": "1"}], "tests: test 0: has 'input' but no expected 'output'"),
    ([{"input": "1", "output": "1"}, {"stdin": "2"}], "tests: test 1: has 'stdin' but no expected 'stdout'"),
    ({"inputs": ["1", "2"], "outputs": ["1"]}, "tests: test 0: APPS-style tests need as many outputs"),
    ([{"inputs": ["1"]}], "tests: test 0: APPS-style tests need lists 'inputs' and 'outputs'"),
    ([{"expected": "1"}], "tests: test 0: unknown test layout with keys ['expected']"),
    ([{"assert": "print(1)"}], "tests: test 0: assert test has no assert statement"),
    ([], "tests: 'tests' must be a non-empty list"),
])
def test_code_tests_without_expectation_are_rejected_at_load(tmp_path, tests, message):
    path = write(tmp_path / "code.jsonl", [{"prompt": "ok", "answer": "1", "tests": [{"input": "", "output": "1"}]},
                                           {"prompt": "p", "answer": "1", "tests": tests}])
    with pytest.raises(ValueError) as info:
        get_task(path)
    assert str(info.value).startswith(f"{path}:2: {message}")
    assert "\n" not in str(info.value)


def test_code_test_layouts_load(tmp_path):
    rows = [{"prompt": "a", "answer": "", "tests": [{"input": "1", "output": "2"}, {"assert": "assert f(1) == 2"}]},
            {"prompt": "b", "answer": "", "tests": [{"stdin": "1", "stdout": "2"}]},
            {"prompt": "c", "answer": "", "tests": {"inputs": ["1"], "outputs": ["2"]}}]
    examples = get_task(write(tmp_path / "code.jsonl", rows)).examples("train")
    assert [e["tests"] for e in examples] == [r["tests"] for r in rows]
