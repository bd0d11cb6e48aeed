import shutil

import pytest

from reasonrl.tasks import DataError, get_task, load_benchmark
from reasonrl.tasks.files import DATA_DIR


def by_id(name):
    return {e["id"]: e for e in load_benchmark(name)}


def test_sizes_and_evaluation_only():
    for name, size in {"math500": 500, "aime24": 30, "amc23": 40, "gsm8k": 1319}.items():
        task = get_task(name)
        assert task.splits == ("test",) and task.verifier == "math"
        assert len(task.examples("test")) == size
        with pytest.raises(ValueError, match=f"'{name}' is evaluation-only"):
            task.examples("train")


def test_aime_answers_lose_leading_zeros():
    aime = by_id("aime24")
    assert aime["aime24-67"]["answer"] == "25"    # stored as "025"
    assert aime["aime24-75"]["answer"] == "73"    # stored as "073"
    assert aime["aime24-60"]["answer"] == "204"
    assert aime["aime24-60"]["prompt"].startswith("Every morning Aya goes for a $9$-kilometer-long walk")


def test_amc_float_answers_become_integers():
    amc = by_id("amc23")
    assert amc["amc23-0"]["answer"] == "27"       # stored as 27.0
    assert amc["amc23-17"]["answer"] == "-1"      # stored as -1.0
    assert amc["amc23-0"]["meta"]["source"] == "amc23"


def test_gsm8k_answer_follows_hashes_without_commas():
    gsm = by_id("gsm8k")
    assert gsm["gsm8k-0"]["answer"] == "18"
    assert gsm["gsm8k-0"]["solution"].endswith("every day at the farmer\u2019s market.")
    assert gsm["gsm8k-146"]["answer"] == "2125"   # stored as "#### 2,125"
    assert gsm["gsm8k-201"]["answer"] == "114200"  # stored as "#### 114,200"


def test_math500_keeps_latex_and_metadata():
    first = load_benchmark("math500")[0]
    assert first["answer"] == r"\left( 3, \frac{\pi}{2} \right)"
    assert first["meta"] == {"source": "math500", "subject": "Precalculus", "level": 2,
                             "unique_id": "test/precalculus/807.json"}
    assert first["id"] == "math500-test/precalculus/807.json"


def test_sampling_is_seeded():
    task = get_task("gsm8k")
    assert task.examples("test", n=5, seed=1) == task.examples("test", n=5, seed=1)
    assert task.examples("test", n=5, seed=1) != task.examples("test", n=5, seed=2)
    with pytest.raises(ValueError, match="only 30"):
        get_task("aime24").examples("test", n=31)


def test_checksum_mismatch_fails(tmp_path):
    for file in DATA_DIR.iterdir():
        shutil.copy(file, tmp_path / file.name)
    assert len(get_task("amc23", data_dir=tmp_path).examples("test")) == 40
    copy = tmp_path / "amc23.jsonl"
    copy.write_bytes(copy.read_bytes().replace(b'"answer":27.0', b'"answer":28.0', 1))
    with pytest.raises(DataError, match="amc23.jsonl: sha256 mismatch"):
        get_task("amc23", data_dir=tmp_path)
