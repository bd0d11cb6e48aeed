"""The loop and checkpoints with the native model: MoE loads reach the router bias, and a
checkpoint reloads through `reasonrl.model.from_pretrained` with every tensor intact."""

import torch
import torch.nn.functional as F

from reasonrl import model as native
from reasonrl.train.checkpoint import latest_checkpoint, load_trainer_state, save_checkpoint
from reasonrl.seeding import step_generator
from reasonrl.train.loop import OptimConfig, Trainer


def _lm_loss(model, ids):
    out = model.forward_train(ids)
    vocab = out.logits.shape[-1]
    loss = F.cross_entropy(out.logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1))
    return loss, {"aux": out.aux_loss.detach()}, out.moe_load


def test_native_tiny_model_trains_updates_router_bias_and_round_trips(tmp_path):
    model = native.create("tiny", seed=0)
    trainer = Trainer(model, OptimConfig(lr=1e-3, moe_bias_gamma=0.01))
    no_decay = {id(p) for g in trainer.optimizer.param_groups if g["name"] == "no_decay" for p in g["params"]}
    assert all(id(p) in no_decay for n, p in model.named_parameters() if "norm" in n)
    biases = [moe.gate.e_score_correction_bias for moe in model.moe_layers()]
    assert biases and all(b.abs().sum() == 0 for b in biases)

    ids = torch.randint(0, model.config.vocab_size, (2, 8), generator=step_generator(0, 1, "data"))
    metrics = trainer.step(_lm_loss, [ids[:1], ids[1:]])
    assert metrics["skipped"] == 0.0 and metrics["moe/load_max_over_mean"] >= 1.0
    # Every expert's bias moves by exactly +-gamma (or 0 when at the mean) after one update.
    assert any(b.abs().sum() > 0 for b in biases)
    assert all(torch.isin(b, torch.tensor([-0.01, 0.0, 0.01])).all() for b in biases)

    path = save_checkpoint(tmp_path, 1, model=model, trainer_state=trainer.state_dict(), extra={"step": 1})
    assert latest_checkpoint(tmp_path) == path and load_trainer_state(path)["trainer"]["step"] == 1
    loaded = native.from_pretrained(path)
    want, got = model.state_dict(), loaded.state_dict()
    assert sorted(want) == sorted(got) and all(torch.equal(want[k], got[k]) for k in want)
