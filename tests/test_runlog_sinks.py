"""run.log_to: TensorBoard and W&B copies of the metric rows, through fakes (neither is a test
dependency), and the one-line failure when an extra is missing."""

import sys
import types

import pytest

from reasonrl.runlog import Run
from reasonrl.runlog_sinks import TensorBoardSink, open_sinks


@pytest.mark.parametrize("name", ["tensorboard", "wandb"])
def test_missing_extra_fails_with_one_line_naming_it(monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    with pytest.raises(ImportError) as info:
        open_sinks([name], "runs/x", "x")
    message = str(info.value)
    assert f"pip install 'reasonrl[{name}]'" in message and "\n" not in message


def test_stage_refuses_before_writing_anything(monkeypatch, tmp_path, capsys):
    from reasonrl.cli import main

    monkeypatch.setitem(sys.modules, "tensorboard", None)
    code = main(["pretrain", f"run.dir={tmp_path}", "run.name=tb", "run.log_to=[tensorboard]"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "reasonrl[tensorboard]" in err[0]
    assert not (tmp_path / "tb").exists()


def test_unknown_sink_is_refused():
    with pytest.raises(ValueError, match="unknown sink 'mlflow'"):
        open_sinks(["mlflow"], "runs/x", "x")


def test_wandb_sink_logs_numbers_offline_and_finishes(monkeypatch, tmp_path):
    calls = []

    class FakeRun:
        def log(self, data, step):
            calls.append(("log", data, step))

        def finish(self):
            calls.append(("finish",))

    fake = types.ModuleType("wandb")
    fake.init = lambda **kw: calls.append(("init", kw)) or FakeRun()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    run = Run(tmp_path / "r", stage="rl", sinks=open_sinks(["wandb"], tmp_path / "r", "r"))
    assert calls == []  # nothing opened before the first row
    run.log_metrics({"step": 3, "loss": 0.5, "accuracy": 1, "flag": True})
    run.close()
    assert calls[0] == ("init", {"mode": "offline", "dir": str(tmp_path / "r"), "name": "r", "project": "reasonrl"})
    assert calls[1:] == [("log", {"loss": 0.5, "accuracy": 1.0}, 3), ("finish",)]
    assert (tmp_path / "r" / "metrics.jsonl").is_file()  # the record is unchanged


def test_tensorboard_sink_writes_scalars_per_step(tmp_path):
    events = []

    class FakeWriter:
        def __init__(self, log_dir):
            events.append(("open", log_dir))

        def add_scalar(self, key, value, step):
            events.append((key, value, step))

        def flush(self):
            events.append(("flush",))

        def close(self):
            events.append(("close",))

    sink = TensorBoardSink(tmp_path / "tb", writer_factory=FakeWriter)
    run = Run(tmp_path, stage="rl", sinks=[sink])
    run.log_metrics({"step": 1, "reward/mean": 0.25})
    run.log_metrics({"step": 2, "reward/mean": 0.5, "eval/accuracy": None})
    run.close()
    assert events == [("open", str(tmp_path / "tb")), ("reward/mean", 0.25, 1), ("flush",),
                      ("reward/mean", 0.5, 2), ("flush",), ("close",)]
