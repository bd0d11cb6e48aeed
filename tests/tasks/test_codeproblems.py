"""stdin/stdout code problems: loading, detection by layout, errors."""

import json

import pytest

from reasonrl.tasks import DataError, get_task


def test_a_tests_file_becomes_a_code_task(tmp_path):
    path = tmp_path / "code.jsonl"
    path.write_text(json.dumps({"id": "p1", "question": "Print the input doubled.", "difficulty": "easy",
                                "tests": [{"input": "2\n", "output": "4\n"}]}) + "\n")
    task = get_task(str(path))
    (ex,) = task.examples("test")
    assert task.verifier == "code" and ex["tests"] == [{"input": "2\n", "output": "4\n"}]
    assert "```python" in ex["prompt"] and ex["meta"]["difficulty"] == "easy"


def test_a_bad_tests_field_fails_with_its_line(tmp_path):
    path = tmp_path / "code.jsonl"
    path.write_text(json.dumps({"question": "x", "tests": [{"input": 1, "output": "2"}]}) + "\n")
    with pytest.raises(DataError, match=r"code.jsonl:1: every test needs"):
        get_task(str(path))


def test_prompt_answer_files_stay_user_tasks(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"prompt": "1+1", "answer": 2}) + "\n")
    assert get_task(str(path)).verifier == "math"
