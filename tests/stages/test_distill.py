"""`reasonrl distill`: the teacher's filtered traces train a student that keeps its own prompt format."""

import json
import shutil

import pytest

from reasonrl.config import load_config
from reasonrl.errors import StageError
from reasonrl.stages import distill
from tests.stages.test_rejection import TOY


@pytest.fixture
def plain_student(tmp_path, tiny_base):
    """The tiny base model under a card of another prompt format (plain) than the teacher's (r1_short)."""
    from reasonrl.tasks.prompts import write_model_card
    from reasonrl.tokenizer import load_tokenizer

    path = tmp_path / "student-base"
    shutil.copytree(tiny_base, path)
    write_model_card(path, "plain", load_tokenizer(path))
    return path


def _distill(tmp_path, teacher, student, *extra):
    overrides = [*TOY, f"teacher.path={teacher}", f"student.path={student}", f"run.dir={tmp_path}", "run.name=d",
                 "student_data.seq_len=64", "student_data.batch_size=4", "budget.steps=2", *extra]
    return distill.main(load_config(distill.DistillConfig, None, overrides))


def test_distill_trains_a_student_in_its_own_format(tmp_path, tiny_base, plain_student):
    from reasonrl.model import load_policy_bundle
    from reasonrl.train.sft_data import load_rows

    result = _distill(tmp_path, tiny_base, plain_student)
    run = tmp_path / "d"
    assert result.outputs["dataset"] == str(run / "traces" / "dataset.jsonl")
    assert result.outputs["model"] == str(run / "student" / "model")
    rows = load_rows(result.outputs["dataset"])
    assert rows and all(r["prompt"].startswith("Say something") for r in rows)
    student = load_policy_bundle(result.outputs["model"])
    assert student.card is not None and student.card.prompt_format == "plain"  # the student's, not the teacher's
    assert json.loads((run / "stage.json").read_text())["outputs"] == result.outputs
    sft_steps = [json.loads(line) for line in (run / "student" / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in sft_steps] == [1, 2]
    assert _distill(tmp_path, tiny_base, plain_student).outputs == result.outputs  # complete: nothing reruns


def test_no_kept_trace_stops_before_the_student(tmp_path, tiny_base, plain_student):
    # a barely trained model never writes <think>...</think><answer>...</answer>
    with pytest.raises(StageError, match="kept no trace"):
        _distill(tmp_path, tiny_base, plain_student, "filters.format=true", "data.n_prompts=4")
    assert not (tmp_path / "d" / "student").exists()


def test_a_wrong_student_fails_before_the_teacher_runs(tmp_path, tiny_base):
    from tests.stages.conftest import run_cli

    out = run_cli("distill", f"teacher.path={tiny_base}", f"student.path={tmp_path / 'nope'}", f"run.dir={tmp_path}",
                  check=False)
    assert out.returncode == 2 and "nope" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists(), "nothing may be written for bad input"


def test_each_part_runs_with_the_distill_runs_switches():
    cfg = distill.DistillConfig()
    cfg.run.strategy, cfg.run.seed, cfg.run.threads = "fsdp", 7, 1
    part = distill.sub_run(cfg, "student")
    assert (part.strategy, part.seed, part.threads, part.name) == ("fsdp", 7, 1, "student")
    assert part.dir == str(cfg.run.path)
