"""`reasonrl compare`: side-by-side held-out accuracy, written as JSON and Markdown."""

import json

from tests.stages.conftest import run_cli


def test_compare_writes_json_and_markdown(tmp_path, tiny_base):
    out = tmp_path / "cmp.json"
    run_cli("compare", str(tiny_base), str(tiny_base), "--names", "a,b", "--n", "6", "--k", "2",
            "--max-new-tokens", "8", "--out", str(out))
    data = json.loads(out.read_text())
    assert data["n_problems"] == 6 and data["k"] == 2 and [r["name"] for r in data["rows"]] == ["a", "b"]
    a, b = data["rows"]
    assert a["greedy"] == b["greedy"]  # same model, same examples, greedy: identical
    for row in data["rows"]:
        assert 0.0 <= row["greedy"] <= 1.0 and 0.0 <= row["pass@1"] <= 1.0
        assert row["greedy_ci95"][0] <= row["greedy"] <= row["greedy_ci95"][1]
    assert out.with_suffix(".md").read_text().startswith("| model | greedy accuracy |")


def test_compare_rejects_a_missing_model_in_one_line(tmp_path):
    result = run_cli("compare", str(tmp_path / "nope"), "--n", "2", check=False)
    assert result.returncode == 2 and "model directory not found" in result.stderr
    assert "Traceback" not in result.stderr
