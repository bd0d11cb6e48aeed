"""`reasonrl rejection`: each filter rejects what it should, the counts add up, the dataset is SFT
data, and an interrupted run resumes to the same dataset."""

import json

import pytest

from reasonrl.config import load_config
from reasonrl.rewards import RewardRuntime
from reasonrl.stages import rejection
from reasonrl.stages.rejection import FILTERS, RejectionConfig, RejectionFilters, make_samples, rejection_reasons
from tests.stages.conftest import run_cli

# a random tiny model gets about half of the parity task "right"; it rarely writes R1's tags, so
# the format and language filters are judged on hand-made completions below instead
TOY = ("data.task=tests.stages.toy:parity_task", "data.n_prompts=10", "sampling.k=6", "sampling.batch_prompts=4",
       "sampling.max_new_tokens=32", "filters.max_tokens=32", "filters.format=false", "filters.language=false",
       "sampling.stop_strings=['</answer>', '</think>']", "run.threads=1", "run.quiet=true")

GOOD = "<think>2 plus 2 is 4</think> <answer>4</answer>"
CASES = [  # (completion, tokens, truncated, the filter that must reject it)
    (GOOD, 10, False, None),
    ("<think>2 plus 2 is 5</think> <answer>5</answer>", 10, False, "correct"),
    ("2 plus 2 is 4 <answer>4</answer>", 10, False, "format"),
    ("<think>2 плюс 2 равно 4</think> <answer>4</answer>", 10, False, "language"),
    ("<think>two and two make 4</think> <answer>4</answer>", 41, False, "max_tokens"),
    ("<think>two and two: 4</think> <answer>4</answer>", 12, True, "max_tokens"),
    ("<think>2 plus 2 is 4, a wrong step</think> <answer>4</answer>", 10, False, "valid_chain"),
    (GOOD + "\n", 10, False, "dedupe"),
    ("<think>4 it is</think> <answer>4</answer>", 10, False, None),
    ("<think>so 4</think> <answer>4</answer>", 10, False, "per_prompt"),
    ("<think>2 plus 2 is 4</think> <answer>4</answer>", 10, False, None),  # the same text, another prompt
]


def _judge(filters, step_check=None):
    examples = [{"id": "a", "prompt": "2+2?", "answer": "4", "meta": {"verifier": "numeric"}},
                {"id": "b", "prompt": "3+1?", "answer": "4", "meta": {"verifier": "numeric"}}]
    texts = [c[0] for c in CASES]
    groups = [0] * (len(CASES) - 1) + [1]
    with RewardRuntime(rejection.reward_spec(filters)) as runtime:  # in-process verifiers: no pool
        scored = runtime.score(texts, [examples[g] for g in groups], rejection.reward_spec(filters))
    samples = make_samples(texts, examples, groups, [c[1] for c in CASES], [c[2] for c in CASES],
                           scored.components, step_check=step_check)
    return rejection_reasons(samples, filters, max_tokens=40)


def test_each_filter_rejects_what_it_should():
    wrong_step = lambda response, example: "wrong step" not in response  # noqa: E731
    assert _judge(RejectionFilters(per_prompt=2), wrong_step) == [c[3] for c in CASES]


def test_disabled_filters_let_through_and_correctness_always_applies():
    reasons = _judge(RejectionFilters(format=False, language=False, valid_chain=False, dedupe=False, per_prompt=0))
    assert reasons == ["correct" if c[3] == "correct" else "max_tokens" if c[3] == "max_tokens" else None
                       for c in CASES]
    # no step check: valid_chain is a no-op even when on
    assert _judge(RejectionFilters(per_prompt=0))[6] is None


def test_prefill_is_part_of_the_response():
    examples = [{"prompt": "2+2?", "answer": "4", "meta": {"verifier": "numeric"}}]
    samples = make_samples(["2 plus 2 is 4</think> <answer>4</answer>"], examples, [0], [9], [False],
                           {"accuracy": [1.0], "format": [1.0]}, prefill="<think>")
    assert samples[0].response == "<think>2 plus 2 is 4</think> <answer>4</answer>"


def _run(tmp_path, name, *extra):
    cfg = load_config(RejectionConfig, None, [*TOY, f"run.dir={tmp_path}", f"run.name={name}", *extra])
    return rejection.main(cfg)


def test_dataset_is_sft_data_and_the_counts_add_up(tmp_path, tiny_base):
    from reasonrl.train.sft_data import load_rows

    result = _run(tmp_path, "r", f"model.path={tiny_base}")
    run = tmp_path / "r"
    assert result.outputs == {"dataset": str(run / "dataset.jsonl"), "model": str(tiny_base)}
    report = json.loads((run / "acceptance.json").read_text())
    assert list(report["rejected"]) == list(FILTERS)
    assert report["prompts"] == 10 and report["samples"] == 60
    assert report["samples"] == report["kept"] + sum(report["rejected"].values())
    assert sum(report["kept_per_prompt"].values()) == 10
    assert sum(int(k) * v for k, v in report["kept_per_prompt"].items()) == report["kept"]
    assert 0 < report["kept"] < report["samples"], report  # the toy task is half reachable
    assert report["acceptance_rate"] == pytest.approx(report["kept"] / report["samples"])
    rows = load_rows(run / "dataset.jsonl")
    assert len(rows) == report["kept"] and len({r["id"] for r in rows}) == len(rows)
    assert set(rows[0]) == {"id", "prompt", "response", "answer", "meta"}
    assert all(r["prompt"].startswith("Say something") for r in rows)  # the question, not the rendered prompt
    assert all(int(r["meta"]["source_id"].split("-")[1]) % 4 < 2 for r in rows)  # train split only
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2, 3]
    assert {"accept_rate", "rejected/correct", "length/mean", "length/kept_mean", "tokens_per_s/gen"} <= set(steps[0])
    again = _run(tmp_path, "r", f"model.path={tiny_base}")  # complete: nothing is sampled again
    assert again.outputs == result.outputs


def test_interrupted_run_resumes_to_the_same_dataset(tmp_path, tiny_base, monkeypatch):
    straight = _run(tmp_path, "straight", f"model.path={tiny_base}")
    real_step = rejection.RejectionProgram.train_step

    def interrupt_at_step_2(self, step):
        if step == 2:
            raise KeyboardInterrupt
        return real_step(self, step)

    monkeypatch.setattr(rejection.RejectionProgram, "train_step", interrupt_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "cut", f"model.path={tiny_base}", "checkpoint.every=100")
    assert (tmp_path / "cut" / "checkpoints" / "step-00000002" / "COMPLETE").is_file()
    assert not (tmp_path / "cut" / "dataset.jsonl").exists()
    sampled = []

    def record(self, step):
        sampled.append(step)
        return real_step(self, step)

    monkeypatch.setattr(rejection.RejectionProgram, "train_step", record)
    resumed = _run(tmp_path, "cut", f"model.path={tiny_base}", "checkpoint.every=100")
    assert (tmp_path / "cut" / "dataset.jsonl").read_text() == (tmp_path / "straight" / "dataset.jsonl").read_text()
    cut, full = (json.loads((tmp_path / n / "acceptance.json").read_text()) for n in ("cut", "straight"))
    assert cut == full and resumed.outputs["model"] == straight.outputs["model"]
    assert sampled == [2], "the resumed run sampled batches the checkpoint already held"


@pytest.mark.slow
def test_rejection_data_trains_with_sft(tmp_path, tiny_base):
    _run(tmp_path, "r", f"model.path={tiny_base}")
    run_cli("sft", f"model.path={tiny_base}", f"data.path={tmp_path / 'r' / 'dataset.jsonl'}", f"run.dir={tmp_path}",
            "run.name=s", "data.seq_len=64", "data.batch_size=4", "budget.steps=2", "run.threads=1")
    assert (tmp_path / "s" / "model" / "reasonrl.json").is_file()


def test_bad_input_is_one_line(tmp_path):
    out = run_cli("rejection", f"run.dir={tmp_path}", check=False)
    assert out.returncode == 2 and "model" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = run_cli("rejection", "model.path=x", "sampling.k=0", f"run.dir={tmp_path}", check=False)
    assert out.returncode == 2 and "sampling.k" in out.stderr
    assert not (tmp_path / "run").exists()
