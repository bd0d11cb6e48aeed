import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from reasonrl.train.checkpoint import (NonFiniteWeightsError, latest_checkpoint, load_trainer_state, restore_rng,
                                       rng_state, save_checkpoint)
from reasonrl.train.loop import OptimConfig, Trainer
from tests.train.toy import ToyModel, mse_loss_fn


class _Tokenizer:
    def save_pretrained(self, directory):
        Path(directory, "tokenizer.json").write_text('{"model": "toy"}')


def _names(root):
    return sorted(p.name for p in root.iterdir())


def test_checkpoint_layout_and_contents(tmp_path):
    model = ToyModel()
    trainer = Trainer(model, OptimConfig())
    trainer.step(mse_loss_fn, [(torch.ones(2, 4), torch.zeros(2, 3))])
    path = save_checkpoint(tmp_path, 7, model=model, tokenizer=_Tokenizer(), trainer_state=trainer.state_dict(),
                           extra={"step": 7, "cursor": 14, "ref_path": "runs/x/ref.safetensors"})
    assert path == tmp_path / "step-00000007" and _names(tmp_path) == ["step-00000007"]
    assert _names(path) == ["COMPLETE", "config.json", "model.safetensors", "tokenizer.json", "trainer_state.pt"]
    assert json.loads((path / "COMPLETE").read_text()) == {"step": 7}
    weights = load_file(str(path / "model.safetensors"))
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    state = load_trainer_state(path)
    assert state["step"] == 7 and state["extra"] == {"step": 7, "cursor": 14, "ref_path": "runs/x/ref.safetensors"}
    assert state["trainer"]["step"] == 1 and state["trainer"]["optimizer"]["state"]
    assert latest_checkpoint(tmp_path) == path


def test_restore_rng_replays_torch_python_and_numpy_draws(tmp_path):
    torch.manual_seed(3), random.seed(3), np.random.seed(3)
    np.random.randn()  # leaves a cached gaussian, part of numpy's state
    save_checkpoint(tmp_path, 1, model=ToyModel())
    drawn = (torch.rand(4), random.random(), np.random.randn(3))
    restore_rng(load_trainer_state(tmp_path / "step-00000001"))
    again = (torch.rand(4), random.random(), np.random.randn(3))
    assert torch.equal(drawn[0], again[0]) and drawn[1] == again[1] and np.array_equal(drawn[2], again[2])
    restore_rng(rng_state())  # the bare "rng" entry is accepted too


def test_crash_mid_write_is_never_returned_and_is_cleaned(tmp_path):
    model = ToyModel()
    good = save_checkpoint(tmp_path, 5, model=model)
    # A crash while writing step 10: the temp dir holds weights but no COMPLETE marker.
    crashed = tmp_path / ".tmp-step-00000010-4242"
    model.save_pretrained(str(crashed))
    # A step dir without COMPLETE (e.g. copied by hand, half-finished) is not a checkpoint either.
    (tmp_path / "step-00000012").mkdir()
    (tmp_path / "step-00000012" / "config.json").write_text("{}")
    assert latest_checkpoint(tmp_path, clean_stale=False) == good and crashed.exists()
    assert latest_checkpoint(tmp_path) == good
    assert not crashed.exists() and (tmp_path / "step-00000012").exists()


def test_keep_last_prunes_older_complete_checkpoints(tmp_path):
    model = ToyModel()
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, model=model, keep_last=2)
    assert _names(tmp_path) == ["step-00000003", "step-00000004"]
    for step in (5, 6):
        save_checkpoint(tmp_path, step, model=model, keep_last=0)
    assert _names(tmp_path) == ["step-00000003", "step-00000004", "step-00000005", "step-00000006"]


def test_saving_the_same_step_again_replaces_it(tmp_path):
    model = ToyModel()
    save_checkpoint(tmp_path, 3, model=model, extra={"v": 1})
    save_checkpoint(tmp_path, 3, model=model, extra={"v": 2})
    assert _names(tmp_path) == ["step-00000003"]
    assert load_trainer_state(tmp_path / "step-00000003")["extra"] == {"v": 2}


def test_saving_non_finite_weights_refuses_and_writes_nothing(tmp_path):
    model = ToyModel()
    save_checkpoint(tmp_path, 1, model=model)
    with torch.no_grad():
        model.proj.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteWeightsError, match="proj.weight"):
        save_checkpoint(tmp_path, 2, model=model)
    assert _names(tmp_path) == ["step-00000001"]


def test_only_rank_zero_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    path = save_checkpoint(tmp_path / "ckpt", 1, model=ToyModel())
    assert path == tmp_path / "ckpt" / "step-00000001" and not (tmp_path / "ckpt").exists()
    assert latest_checkpoint(tmp_path / "ckpt") is None
