"""`reasonrl sft`: learns the responses (loss on assistant tokens falls), writes the model card."""

import json

from tests.stages.conftest import run_cli


def _pairs(path, n=16):
    from reasonrl.tasks import get_task, r1_completion

    examples = get_task("arithmetic", digits=2).examples("train", n, seed=3)
    path.write_text("".join(json.dumps({"prompt": e["prompt"], "response": r1_completion(e)}) + "\n" for e in examples))
    return examples


def test_sft_lowers_the_loss_on_its_data_and_records_the_format(tmp_path, tiny_base):
    data = tmp_path / "sft.jsonl"
    _pairs(data)
    args = (f"model.path={tiny_base}", f"data.path={data}", f"run.dir={tmp_path}", "run.name=s", "data.seq_len=64",
            "data.batch_size=4", "budget.steps=30", "optim.lr=3e-3", "checkpoint.every=15", "run.threads=1")
    run_cli("sft", *args)
    rows = [json.loads(line) for line in (tmp_path / "s" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 31))
    first, last = rows[0]["ce_loss"], sum(r["ce_loss"] for r in rows[-5:]) / 5
    assert last < 0.75 * first, (first, last)
    card = json.loads((tmp_path / "s" / "model" / "reasonrl.json").read_text())
    assert card["prompt_format"] == "r1_short"  # inherited from the base model's card
    again = run_cli("sft", *args)
    assert "already complete" in again.stderr or again.returncode == 0


def test_bad_sft_data_is_one_line(tmp_path, tiny_base):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q"}\n')
    out = run_cli("sft", f"model.path={tiny_base}", f"data.path={bad}", f"run.dir={tmp_path}", check=False)
    assert out.returncode == 2 and "bad.jsonl:1" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists(), "nothing may be written for bad input"
