"""`reasonrl eval` end to end on a tiny native model: the results schema, samples.jsonl, paired
differences of a model against itself, seeds, determinism, one-line errors; `compare` as alias."""

import json

import pytest

from tests.stages.conftest import run_cli

TOP_KEYS = {"task", "n_problems", "k", "pass@1", "pass@k", "cons@k", "ci95", "breakdown", "model", "settings"}
MODEL_KEYS = TOP_KEYS | {"name", "greedy", "mean_length", "format_failure_rate", "strict", "process"}
ARGS = ("--task", "math500", "--limit", "3", "--k", "2", "--seeds", "0,1", "--max-new-tokens", "8",
        "--names", "a,b", "eval.n_boot=200")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_base):
    root = tmp_path_factory.mktemp("eval")
    for name in ("first", "second"):
        run_cli("eval", str(tiny_base), str(tiny_base), *ARGS, f"run.dir={root}", f"run.name={name}")
    return root / "first", root / "second"


def test_results_schema(two_runs):
    run, _ = two_runs
    doc = json.loads((run / "eval_results.json").read_text())
    assert TOP_KEYS | {"models", "diff", "seeds"} <= set(doc)
    assert doc["task"] == "math500" and doc["n_problems"] == 3 and doc["k"] == 2
    assert doc["pass@k"].keys() == {"1", "2"} and set(doc["ci95"]) >= {"pass@1", "pass@2", "cons@k", "greedy"}
    assert [m["name"] for m in doc["models"]] == ["a", "b"]
    for m in doc["models"]:
        assert MODEL_KEYS <= set(m)
        assert 0.0 <= m["pass@1"] <= 1.0 and 0.0 <= m["format_failure_rate"] <= 1.0 and m["mean_length"] > 0
        assert m["ci95"]["pass@1"][0] <= m["pass@1"] <= m["ci95"]["pass@1"][1]
        assert {"pass@1", "pass@k", "cons@k", "format_failure_rate", "ci95"} <= set(m["strict"])
        assert m["settings"]["prompt_format"] == "r1_short" and m["settings"]["strict_extract"] == "answer_tag"
    assert {k: v for k, v in doc["models"][0].items()} == {k: doc[k] for k in doc["models"][0]}  # top = first
    assert set(doc["breakdown"]) >= {"subject", "level"}  # MATH-500's own categories
    assert sum(v["n"] for v in doc["breakdown"]["level"].values()) == 3
    assert doc["settings"]["temperature"] == 0.6 and doc["settings"]["top_p"] == 0.95


def test_a_model_against_itself_differs_by_exactly_zero(two_runs):
    doc = json.loads((two_runs[0] / "eval_results.json").read_text())
    (diff,) = doc["diff"]
    assert diff["model"] == "b" and diff["against"] == "a"
    for metric in ("pass@1", "cons@k", "greedy"):
        assert diff[metric] == {"value": 0.0, "ci95": [0.0, 0.0]}


def test_seeds_give_per_seed_values_mean_and_std(two_runs):
    seeds = json.loads((two_runs[0] / "eval_results.json").read_text())["seeds"]
    assert seeds["values"] == [0, 1]
    per = seeds["per_seed"]["a"]
    assert len(per["pass@1"]) == 2 and set(per) >= {"pass@1", "cons@k", "pass@2", "strict_pass@1"}
    assert seeds["mean"]["a"]["pass@1"] == pytest.approx(sum(per["pass@1"]) / 2)
    assert seeds["std"]["a"]["pass@1"] >= 0.0 and seeds["per_seed"]["a"] == seeds["per_seed"]["b"]


def test_samples_cover_models_seeds_problems_and_k(two_runs):
    rows = [json.loads(line) for line in (two_runs[0] / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 3 * 2  # models x seeds x problems x k
    keys = {"model", "problem_id", "sample", "seed", "prompt", "completion", "answer", "answer_strict", "verdict",
            "verdict_strict", "gold"}
    assert all(keys <= set(r) for r in rows)
    assert {(r["model"], r["seed"], r["sample"]) for r in rows} == {(m, s, j) for m in "ab" for s in (0, 1)
                                                                    for j in (0, 1)}
    greedy = (two_runs[0] / "greedy.jsonl").read_text().splitlines()
    assert len(greedy) == 2 * 3


def test_a_second_run_is_identical(two_runs):
    first, second = two_runs
    for name in ("eval_results.json", "samples.jsonl", "greedy.jsonl"):
        assert (first / name).read_text() == (second / name).read_text()


@pytest.mark.parametrize("args, message", [
    (("--task", "nope"), "unknown task 'nope'"),
    (("--k", "0"), "'eval.k'"),
    (("MISSING",), "model directory not found"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, tiny_base, args, message):
    models = [str(tmp_path / "nope")] if args == ("MISSING",) else [str(tiny_base)]
    flags = () if args == ("MISSING",) else args
    result = run_cli("eval", *models, *flags, f"run.dir={tmp_path}", "run.name=bad", check=False)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


def test_yaml_config_and_overrides(tmp_path, tiny_base):
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(f"models: [{tiny_base}]\ndata: {{task: gpqa_example, limit: 2}}\n"
                   "eval: {k: 3, greedy: false, max_new_tokens: 4, n_boot: 50}\n")
    run_cli("eval", str(cfg), "eval.k=1", f"run.dir={tmp_path}")  # default run name: eval
    doc = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    assert doc["k"] == 1 and doc["n_problems"] == 2 and doc["greedy"] is None and doc["diff"] == []
    assert set(doc["breakdown"]) == {"domain", "subdomain"}


def test_compare_is_an_alias_with_its_old_flags(tmp_path, tiny_base):
    out = tmp_path / "cmp.json"
    run_cli("compare", str(tiny_base), str(tiny_base), "--task", "arithmetic", "--names", "a,b", "--n", "4",
            "--k", "2", "--max-new-tokens", "8", "--out", str(out))
    data = json.loads(out.read_text())
    assert data["n_problems"] == 4 and [r["name"] for r in data["rows"]] == ["a", "b"]
    a, b = data["rows"]
    assert a["greedy"] == b["greedy"] and a["greedy_ci95"][0] <= a["greedy"] <= a["greedy_ci95"][1]
    assert out.with_suffix(".md").read_text().startswith("| model | greedy accuracy |")
    assert (tmp_path / "cmp" / "eval_results.json").is_file()


def test_flags_become_dotted_overrides_and_positionals_may_follow_them():
    from reasonrl.cli import build_parser
    from reasonrl.config import load_config
    from reasonrl.stages.evaluate import EvalConfig, cli_overrides

    args = build_parser().parse_args(["eval", "m1", "--task", "rg:basic_arithmetic", "--k", "4", "m2",
                                      "--seeds", "0,1,2", "--names", "x,y", "--task-option", "size=5",
                                      "run.name=cmp", "--limit", "7", "--top-p", "0.9"])
    path, overrides = cli_overrides(args)
    cfg = load_config(EvalConfig, path, overrides)
    assert path is None and cfg.models == ["m1", "m2"] and cfg.names == ["x", "y"]
    assert (cfg.data.task, cfg.data.limit, cfg.data.options) == ("rg:basic_arithmetic", 7, {"size": 5})
    assert (cfg.eval.k, cfg.eval.seeds, cfg.eval.top_p, cfg.run.name) == (4, [0, 1, 2], 0.9, "cmp")
    assert (cfg.eval.temperature, cfg.run.dir) == (0.6, "runs")  # defaults: R1's sampling
