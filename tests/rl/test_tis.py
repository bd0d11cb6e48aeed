"""Truncated importance sampling between a sampler's and the trainer's log-probs: hand-computed
weights and mismatch metrics, an exact no-op for identical log-probs, and the RL step against a
fake engine whose log-probs are the trainer's shifted by a known amount per row."""

import math
from types import SimpleNamespace

import pytest
import torch

from reasonrl.model import create
from reasonrl.rl import step as step_mod
from reasonrl.rl.config import RLSection
from reasonrl.rl.losses import POLICY_LOSSES, policy_loss
from reasonrl.rl.rollout import RolloutBatch, pad_batch
from reasonrl.rl.step import ALGORITHMS, RLContext
from reasonrl.rl.tis import tis_weights
from reasonrl.rl.update import reference_logprobs
from reasonrl.train.loop import OptimConfig, Trainer

LENGTHS = [6, 2, 4, 5]  # completion tokens per row


def test_hand_computed_weights_and_metrics():
    deltas = [0.0, math.log(1.5), math.log(3.0), -math.log(2.0)]
    trainer = torch.tensor([[-1.0, -1.0, -1.0, -1.0, 0.0]])
    sampler = trainer - torch.tensor([deltas + [5.0]])  # the last position is padding: ignored
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    weights, m = tis_weights(trainer, sampler, mask, cap=2.0)
    assert torch.allclose(weights, torch.tensor([[1.0, 1.5, 2.0, 0.5, 1.0]]), atol=1e-6)
    assert m["mismatch/abs_logp_diff"] == pytest.approx((math.log(1.5) + math.log(3.0) + math.log(2.0)) / 4, abs=1e-6)
    # ratios sorted 0.5, 1, 1.5, 3: p50 halfway between 1 and 1.5; p95 at 2.85 of 3 intervals
    assert m["mismatch/ratio_p50"] == pytest.approx(1.25, abs=1e-6)
    assert m["mismatch/ratio_p95"] == pytest.approx(1.5 + 0.85 * 1.5, abs=1e-6)
    assert m["mismatch/ratio_max"] == pytest.approx(3.0, abs=1e-5)
    assert m["mismatch/capped_frac"] == 0.25
    off, m_off = tis_weights(trainer, sampler, mask, cap=None)
    assert off is None and m_off["mismatch/capped_frac"] == 0.0
    assert m_off["mismatch/ratio_max"] == m["mismatch/ratio_max"]  # logged whether or not it corrects


def test_identical_logprobs_give_unit_weights_and_metrics():
    logp = torch.randn(3, 7)
    weights, m = tis_weights(logp, logp.clone(), torch.ones(3, 7), cap=2.0)
    assert torch.equal(weights, torch.ones(3, 7))
    assert m == {"mismatch/abs_logp_diff": 0.0, "mismatch/ratio_p50": 1.0, "mismatch/ratio_p95": 1.0,
                 "mismatch/ratio_max": 1.0, "mismatch/capped_frac": 0.0}


@pytest.mark.parametrize("algorithm", sorted(POLICY_LOSSES))
def test_unit_weights_leave_every_loss_and_gradient_exactly_unchanged(algorithm):
    g = torch.Generator().manual_seed(0)
    old = torch.randn(4, 6, generator=g)
    mask = (torch.rand(4, 6, generator=g) > 0.3).float()
    adv = torch.randn(4, generator=g)
    results = []
    for weights in (None, torch.ones(4, 6)):
        logp = (old + 0.1 * torch.randn(4, 6, generator=torch.Generator().manual_seed(1))).requires_grad_()
        loss, metrics = POLICY_LOSSES[algorithm](logp, old, adv, mask, is_weights=weights)
        loss.backward()
        results.append((loss.detach(), logp.grad, metrics))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    assert results[0][2] == results[1][2]


def test_weights_scale_each_tokens_surrogate():
    # ratio 1 everywhere (no clipping): the GRPO token loss is -A, reweighted to -w A
    logp = torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    w = torch.tensor([[2.0, 0.5, 1.0], [1.0, 1.0, 0.25]])
    loss, _ = policy_loss(logp, logp, torch.tensor([1.0, -2.0]), mask, is_weights=w)
    expected = (-(2.0 + 0.5) / 2 + 2.0 * (1.0 + 1.0 + 0.25) / 3) / 2
    assert float(loss) == pytest.approx(expected, abs=1e-6)


# ---- the RL step against a fake engine ---------------------------------------------------------
def engine_batch(actor, shifts, temperature):
    """Rollouts whose sampler log-probs are the trainer's own minus `shifts[row]` (a fake engine
    that disagrees with the trainer by a known amount), rewards with spread in both groups."""
    g = torch.Generator().manual_seed(0)
    V = actor.config.vocab_size
    prompts = [torch.randint(2, V, (n,), generator=g).tolist() for n in (3, 3, 5, 5)]
    completions = [torch.randint(2, V, (n,), generator=g).tolist() for n in LENGTHS]
    ids, mask, _ = pad_batch(prompts, completions, [[0.0] * n for n in LENGTHS], 0)
    trainer = reference_logprobs(actor, ids, mask, temperature, len(ids))  # the step's own recomputation
    old = (trainer - torch.tensor(shifts)[:, None]) * mask
    return RolloutBatch([{}] * 4, [""] * 4, [""] * 4, ids, mask, old, list(LENGTHS), [False] * 4,
                        torch.tensor([1.0, 0.0, 0.0, 1.0]))


def fake_engine_context(monkeypatch, shifts, tis_cap=2.0, trainer_logprobs=False, algorithm="grpo"):
    from reasonrl.rl.advantages import group_advantages
    from reasonrl.rl.ppo import ActorCritic

    actor = create("tiny", seed=0, vocab_size=64).train()
    policy = ActorCritic.create(actor) if algorithm == "ppo" else actor
    rl = RLSection(algorithm=algorithm, prompts_per_step=2, group_size=2, max_new_tokens=8, temperature=0.7,
                   tis_cap=tis_cap)
    batch = engine_batch(actor, shifts, rl.temperature)
    sampler = SimpleNamespace(sync=lambda actor: None, trainer_logprobs=trainer_logprobs)
    ctx = RLContext(rl=rl, seed=0, grad_accum=1, policy=policy, actor=actor, reference=None, tokenizer=None,
                    trainer=Trainer(policy, OptimConfig(total_steps=8)), sampler=sampler, scorer=None,
                    reward_spec={}, train_examples=[], prompt=None)
    adv, _ = group_advantages(batch.rewards, 2, rl.advantage)
    monkeypatch.setattr(step_mod, "gather", lambda ctx, step: (batch, adv, {}))
    monkeypatch.setattr(step_mod, "sample_round", lambda ctx, step, round_: batch)
    return ctx, batch


def run_step(ctx):
    _, stats = ALGORITHMS[ctx.rl.algorithm](ctx, 0)
    return {k: v for k, v in stats.items() if not k.startswith(("time/", "tokens_per_s"))}


def test_fake_engine_mismatch_is_logged_and_corrected(monkeypatch):
    shifts = [0.0, 0.5, -1.0, 0.25]
    ctx, batch = fake_engine_context(monkeypatch, shifts, tis_cap=1.5)
    seen = {}
    updates = step_mod.minibatch_updates
    monkeypatch.setattr(step_mod, "minibatch_updates",
                        lambda ctx, step, tensors, fn: seen.update(tensors) or updates(ctx, step, tensors, fn))
    stats = run_step(ctx)
    # the loss's old log-probs are the trainer's; the engine's enter only through the weights
    assert torch.allclose(seen["old"], batch.old_logp + torch.tensor(shifts)[:, None] * batch.mask, atol=1e-6)
    expected = torch.tensor([min(math.exp(s), 1.5) for s in shifts])[:, None].expand_as(batch.mask)
    expected = torch.where(batch.mask > 0, expected, torch.ones_like(expected))
    assert torch.allclose(seen["tis"], expected, atol=1e-5)
    tokens = sum(LENGTHS)
    assert stats["mismatch/abs_logp_diff"] == pytest.approx(
        sum(abs(s) * n for s, n in zip(shifts, LENGTHS)) / tokens, abs=1e-5)
    # 17 ratios sorted: 4 x e^-1, 6 x 1, 5 x e^0.25, 2 x e^0.5: the median is the 9th (a 1), p95 and
    # the max lie in the top two
    assert stats["mismatch/ratio_p50"] == pytest.approx(1.0, abs=1e-5)
    assert stats["mismatch/ratio_p95"] == pytest.approx(math.exp(0.5), abs=1e-5)
    assert stats["mismatch/ratio_max"] == pytest.approx(math.exp(0.5), abs=1e-5)
    assert stats["mismatch/capped_frac"] == pytest.approx(2 / tokens)


@pytest.mark.parametrize("algorithm", ["grpo", "cispo", "ppo"])
def test_fake_engine_agreeing_with_the_trainer_changes_nothing(monkeypatch, algorithm):
    runs = {}
    for name, cap, own in (("tis", 2.0, False), ("no_tis", None, False), ("trainer_sampler", 2.0, True)):
        ctx, _ = fake_engine_context(monkeypatch, [0.0] * 4, tis_cap=cap, trainer_logprobs=own, algorithm=algorithm)
        stats = run_step(ctx)
        runs[name] = ({k: v for k, v in stats.items() if not k.startswith("mismatch/")},
                      {k: v.clone() for k, v in ctx.policy.state_dict().items()})
    assert runs["tis"][0] == runs["no_tis"][0] == runs["trainer_sampler"][0]
    for other in ("no_tis", "trainer_sampler"):
        assert all(torch.equal(runs["tis"][1][k], runs[other][1][k]) for k in runs["tis"][1])


def test_vllm_sampler_is_refused_in_one_line_before_anything_is_written(tmp_path):
    from tests.stages.conftest import run_cli

    out = run_cli("rl", "model.path=nowhere", "rl.sampler=vllm", f"run.dir={tmp_path}", "run.name=v", check=False)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "rl.sampler" in out.stderr and ("vLLM" in out.stderr or "CUDA" in out.stderr)
    assert not (tmp_path / "v").exists()
