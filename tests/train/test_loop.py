import copy
import math

import pytest
import torch

from reasonrl.seeding import seed_for, step_generator
from reasonrl.train.loop import OptimConfig, Trainer, lr_at, make_optimizer
from tests.train.toy import ToyModel, mse_loss_fn


def _batch(n: int, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=gen), torch.randn(n, 3, generator=gen)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


# ---- schedule -------------------------------------------------------------------------------
def test_lr_warmup_then_cosine_hand_values():
    cfg = OptimConfig(lr=1.0, warmup_steps=10, total_steps=110, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)      # 1/10: warmup starts above 0
    assert lr_at(4, cfg) == pytest.approx(0.5)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)     # cosine start
    assert lr_at(60, cfg) == pytest.approx(0.55)    # halfway: 0.1 + 0.9 * 0.5
    assert lr_at(35, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_at(110, cfg) == pytest.approx(0.1)
    assert lr_at(500, cfg) == pytest.approx(0.1)    # stays at the floor


def test_lr_without_total_steps_is_constant_after_warmup():
    cfg = OptimConfig(lr=2.0, warmup_steps=4, total_steps=0)
    assert [lr_at(s, cfg) for s in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert lr_at(3, OptimConfig(lr=2.0, warmup_steps=0, total_steps=0)) == 2.0


def test_optimizer_groups_skip_decay_on_norms_biases_and_buffers():
    model = ToyModel()
    opt = make_optimizer(model, OptimConfig(weight_decay=0.1))
    groups = {g["name"]: g for g in opt.param_groups}
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in groups["decay"]["params"]) == ["head.weight", "proj.weight"]
    assert sorted(names[id(p)] for p in groups["no_decay"]["params"]) == ["norm.bias", "norm.weight", "proj.bias"]
    assert groups["decay"]["weight_decay"] == 0.1 and groups["no_decay"]["weight_decay"] == 0.0
    optimised = {id(p) for g in opt.param_groups for p in g["params"]}
    assert id(model.e_score_correction_bias) not in optimised
    assert opt.param_groups[0]["betas"] == (0.9, 0.95)


def test_frozen_parameters_are_not_optimised():
    model = ToyModel()
    model.proj.weight.requires_grad_(False)
    opt = make_optimizer(model, OptimConfig())
    assert all(p is not model.proj.weight for g in opt.param_groups for p in g["params"])


# ---- accumulation, lr, metrics ---------------------------------------------------------------
def test_two_microbatches_equal_one_double_batch():
    cfg = OptimConfig(lr=1e-2, grad_clip=0.0, moe_bias_gamma=0.0)
    a, b = ToyModel(), ToyModel()
    x, y = _batch(4)
    out_a = Trainer(a, cfg).step(mse_loss_fn, [(x[:2], y[:2]), (x[2:], y[2:])])
    out_b = Trainer(b, cfg).step(mse_loss_fn, [(x, y)])
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-6, rtol=0), name
        assert torch.allclose(pa, pb, atol=1e-6, rtol=0), name
    assert out_a["loss"] == pytest.approx(out_b["loss"], abs=1e-6)
    assert out_a["grad_norm"] == pytest.approx(out_b["grad_norm"], abs=1e-6)


def test_step_sets_scheduled_lr_and_reports_metrics():
    model = ToyModel()
    trainer = Trainer(model, OptimConfig(lr=1.0, warmup_steps=2, total_steps=10))
    x, y = _batch(2)
    first = trainer.step(mse_loss_fn, [(x, y)])
    assert first["lr"] == 0.5 and all(g["lr"] == 0.5 for g in trainer.optimizer.param_groups)
    assert trainer.step(mse_loss_fn, [(x, y)])["lr"] == 1.0
    assert first["skipped"] == 0.0 and first["skipped_steps"] == 0
    assert set(first) >= {"loss", "grad_norm", "lr", "abs_err", "moe/load_max_over_mean"}
    assert trainer.step_count == 2


def test_grad_clip_bounds_the_update_and_reports_the_raw_norm():
    model = ToyModel()
    trainer = Trainer(model, OptimConfig(grad_clip=1e-3, moe_bias_gamma=0.0))
    x, y = _batch(2)
    out = trainer.step(mse_loss_fn, [(x, y * 100)])
    assert out["grad_norm"] > 1.0
    clipped = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    assert clipped.item() == pytest.approx(1e-3, rel=1e-3)


# ---- the non-finite guard --------------------------------------------------------------------
def test_nan_loss_skips_step_and_leaves_weights_untouched():
    model = ToyModel()
    trainer = Trainer(model, OptimConfig(lr=0.1))
    before = _weights(model)
    x, y = _batch(2)

    def nan_loss(m, batch):
        return m(batch[0]).sum() * float("nan"), {}, m.load(m(batch[0]))

    out = trainer.step(nan_loss, [(x, y)])
    assert out["skipped"] == 1.0 and out["skipped_steps"] == 1
    assert _same(before, _weights(model))       # the MoE bias buffer included
    assert not trainer.optimizer.state          # no Adam moments polluted
    assert all(p.grad is None for p in model.parameters())
    good = trainer.step(mse_loss_fn, [(x, y)])
    assert good["skipped"] == 0.0 and good["skipped_steps"] == 1 and trainer.step_count == 2
    assert not _same(before, _weights(model))


def test_nan_gradient_with_finite_loss_is_skipped():
    model = ToyModel()
    trainer = Trainer(model, OptimConfig(lr=0.1))
    before = _weights(model)

    def nan_grad(m, batch):
        # sqrt'(0) = inf and inf * 0 = nan: the loss is 0 but every head.weight grad is NaN.
        loss = torch.sqrt((m.head.weight * 0).sum()) + m(batch[0]).pow(2).mean()
        return loss, {}, None

    out = trainer.step(nan_grad, [_batch(2)])
    assert math.isfinite(out["loss"]) and not math.isfinite(out["grad_norm"])
    assert out["skipped"] == 1.0 and trainer.skipped_steps == 1
    assert _same(before, _weights(model))
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ---- MoE bias update -------------------------------------------------------------------------
class _Recorder(ToyModel):
    def __init__(self):
        super().__init__()
        self.calls = []

    def update_moe_bias(self, load, gamma):
        self.calls.append((load.clone(), gamma))


def _fixed_loads(loads):
    batches = iter(loads)

    def loss_fn(m, batch):
        return m(batch[0]).pow(2).mean(), {}, torch.tensor(next(batches), dtype=torch.float32)
    return loss_fn


def test_moe_bias_update_gets_summed_load_after_the_step():
    model = _Recorder()
    out = Trainer(model, OptimConfig(moe_bias_gamma=0.001)).step(
        _fixed_loads([[[1, 3], [2, 2]], [[1, 1], [2, 2]]]), [_batch(2), _batch(2, seed=2)])
    (load, gamma), = model.calls
    assert torch.equal(load, torch.tensor([[2.0, 4.0], [4.0, 4.0]])) and gamma == 0.001
    assert out["moe/load_max_over_mean"] == pytest.approx((4 / 3 + 1.0) / 2)   # per layer, averaged


def test_moe_bias_update_disabled_by_gamma_zero_and_on_skipped_steps():
    model = _Recorder()
    Trainer(model, OptimConfig(moe_bias_gamma=0.0)).step(_fixed_loads([[[1, 3]]]), [_batch(2)])
    assert model.calls == []

    def nan_loss(m, batch):
        return m(batch[0]).sum() * float("inf"), {}, torch.ones(1, 3)
    Trainer(model, OptimConfig()).step(nan_loss, [_batch(2)])
    assert model.calls == []


def test_toy_bias_update_moves_the_buffer_not_an_optimised_parameter():
    model = ToyModel()
    Trainer(model, OptimConfig(moe_bias_gamma=0.5)).step(_fixed_loads([[[0, 3, 0]]]), [_batch(2)])
    assert torch.equal(model.e_score_correction_bias, torch.tensor([0.5, -0.5, 0.5]))


# ---- state and per-step randomness -------------------------------------------------------------
def test_trainer_state_round_trip_continues_identically():
    cfg = OptimConfig(lr=0.05, warmup_steps=1, total_steps=6)
    a = ToyModel()
    ta = Trainer(a, cfg)
    for seed in (1, 2):
        ta.step(mse_loss_fn, [_batch(2, seed)])
    b = copy.deepcopy(a)
    tb = Trainer(b, cfg)
    tb.load_state_dict(copy.deepcopy(ta.state_dict()))
    assert tb.step_count == 2
    ra, rb = ta.step(mse_loss_fn, [_batch(2, 3)]), tb.step(mse_loss_fn, [_batch(2, 3)])
    timeless = lambda m: {k: v for k, v in m.items() if not k.startswith("time/")}  # noqa: E731 (wall clock)
    assert timeless(ra) == timeless(rb) and _same(_weights(a), _weights(b))
    assert ra["time/forward_backward"] > 0 and ra["time/optimizer"] > 0


def test_seed_for_is_a_fixed_function_of_seed_step_and_stream():
    # Pinned: changing the derivation would silently change what resumed runs draw.
    assert seed_for(0, 0, "default") == 5381805314526821432
    assert seed_for(0, 1, "data") == seed_for(0, 1, "data")
    assert len({seed_for(0, 1, "data"), seed_for(0, 2, "data"), seed_for(1, 1, "data"), seed_for(0, 1, "noise")}) == 4
    assert all(0 <= seed_for(s, 7) < 2**63 for s in range(5))
    a = torch.rand(3, generator=step_generator(5, 9))
    assert torch.equal(a, torch.rand(3, generator=step_generator(5, 9)))
    assert not torch.equal(a, torch.rand(3, generator=step_generator(5, 10)))
