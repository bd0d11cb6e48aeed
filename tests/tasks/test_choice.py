"""GPQA-layout multiple choice: seeded per-problem shuffles, letters, file detection, errors."""

import json

import pytest

from reasonrl.tasks import DataError, get_task
from reasonrl.tasks.choice import shuffled_options

ROW = {"Question": "Which is a noble gas?", "Correct Answer": "Argon", "Incorrect Answer 1": "Sodium",
       "Incorrect Answer 2": "Iron", "Incorrect Answer 3": "Carbon", "Subdomain": "Inorganic"}


def test_shuffle_is_seeded_per_problem_and_keeps_the_gold():
    options, letter = shuffled_options(ROW, "q1", 0)
    assert sorted(options) == ["Argon", "Carbon", "Iron", "Sodium"] and options["ABCD".index(letter)] == "Argon"
    assert shuffled_options(ROW, "q1", 0) == (options, letter)  # stable across calls and runs
    letters = {shuffled_options(ROW, f"q{i}", 0)[1] for i in range(40)}
    assert letters == set("ABCD")  # the gold letter is spread over the positions


def test_a_gpqa_layout_file_becomes_a_choice_task(tmp_path):
    path = tmp_path / "mcq.jsonl"
    path.write_text("\n".join(json.dumps({**ROW, "id": f"q{i}"}) for i in range(3)) + "\n")
    task = get_task(str(path))
    examples = task.examples("test")
    assert task.verifier == "choice" and [e["id"] for e in examples] == ["q0", "q1", "q2"]
    ex = examples[0]
    assert "A) " in ex["prompt"] and "D) " in ex["prompt"] and ex["answer"] in "ABCD"
    assert ex["meta"]["subdomain"] == "Inorganic" and ex["meta"]["verifier"] == "choice"
    reshuffled = [e["choices"] for e in get_task(str(path), shuffle_seed=1).examples("test")]
    assert sorted(reshuffled[0]) == sorted(ex["choices"])  # another shuffle_seed: the same options
    with pytest.raises(ValueError, match="evaluation-only"):
        task.examples("train")


def test_a_row_missing_an_option_fails_with_its_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    row = dict(ROW)
    del row["Incorrect Answer 3"]
    path.write_text(json.dumps(ROW) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: .*Incorrect Answer 3"):
        get_task(str(path))


def test_example_files_are_registered():
    assert len(get_task("gpqa_example").examples("test")) == 6
    code = get_task("code_example").examples("test")
    assert len(code) == 4 and all(e["tests"] and e["solution"] for e in code)
