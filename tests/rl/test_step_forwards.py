"""Which forwards one RL step runs: none of the reference at beta = 0 (the step is bitwise the same
as without a reference), one without autograd per reference chunk at beta > 0, and none to
recompute old log-probs when the sampler is the trainer's own (they are reused), for every mu;
the completion and full log-prob paths give the same step metrics."""

from types import SimpleNamespace

import pytest
import torch

from reasonrl.model import create
from reasonrl.rl import step as step_mod
from reasonrl.rl.config import RLSection
from reasonrl.rl.ppo import ActorCritic
from reasonrl.rl.rollout import RolloutBatch, pad_batch
from reasonrl.rl.step import ALGORITHMS, RLContext
from reasonrl.train.loop import OptimConfig, Trainer

ROWS = 4


def rollouts(model) -> RolloutBatch:
    """Four completions of two prompts, with log-probs from the policy itself (as a sampler records)."""
    g = torch.Generator().manual_seed(0)
    V = model.config.vocab_size
    prompts = [torch.randint(2, V, (n,), generator=g).tolist() for n in (3, 3, 5, 5)]
    completions = [torch.randint(2, V, (n,), generator=g).tolist() for n in (6, 2, 4, 5)]
    ids, mask, _ = pad_batch(prompts, completions, [[0.0] * len(c) for c in completions], 0)
    with torch.no_grad():
        logits = model(ids)[:, :-1].float() / 0.7
    old = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0] * mask
    return RolloutBatch([{}] * ROWS, [""] * ROWS, [""] * ROWS, ids, mask, old, [6, 2, 4, 5], [False] * ROWS,
                        torch.tensor([1.0, 0.0, 0.0, 1.0]))


class Counting(torch.nn.Module):
    """Wraps a policy and records, per forward_train call, whether autograd was on."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, []
        self.config = inner.config

    def forward_train(self, ids, **kwargs):
        self.calls.append(torch.is_grad_enabled())
        return self.inner.forward_train(ids, **kwargs)

    def output_head(self):
        return self.inner.output_head()

    def forward(self, ids):
        return self.inner(ids)


def context(monkeypatch, algorithm="grpo", beta=0.0, reference=True, mu=1, minibatch=0, logprobs="completion",
            grad_accum=1, seed=0):
    torch.manual_seed(seed)
    actor = create("tiny", seed=seed, vocab_size=64).train()
    batch = rollouts(actor)
    policy = ActorCritic.create(actor) if algorithm == "ppo" else actor
    ref = Counting(create("tiny", seed=seed + 1, vocab_size=64).eval().requires_grad_(False)) if reference else None
    rl = RLSection(algorithm=algorithm, beta=beta, mu=mu, minibatch_size=minibatch, prompts_per_step=2,
                   group_size=2, max_new_tokens=8, temperature=0.7, logprobs=logprobs)
    trainer = Trainer(policy, OptimConfig(total_steps=8))
    # the trainer's own sampler: its log-probs are reused (a foreign engine's are recomputed, test_tis.py)
    sampler = SimpleNamespace(sync=lambda actor: None, trainer_logprobs=True)
    ctx = RLContext(rl=rl, seed=0, grad_accum=grad_accum, policy=policy, actor=actor, reference=ref, tokenizer=None,
                    trainer=trainer, sampler=sampler, scorer=None, reward_spec={}, train_examples=[], prompt=None)
    from reasonrl.rl.advantages import group_advantages

    adv, _ = group_advantages(batch.rewards, 2, rl.advantage)
    monkeypatch.setattr(step_mod, "gather", lambda ctx, step: (batch, adv, {}))
    monkeypatch.setattr(step_mod, "sample_round", lambda ctx, step, round_: batch)
    return ctx


def run_step(ctx):
    _, stats = ALGORITHMS[ctx.rl.algorithm](ctx, 0)
    return {k: v for k, v in stats.items() if not k.startswith(("time/", "tokens_per_s"))}


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("algorithm", ["grpo", "ppo"])
def test_beta_zero_skips_the_reference_forward_and_changes_nothing(monkeypatch, algorithm):
    held = context(monkeypatch, algorithm, beta=0.0, reference=True)
    stats_held = run_step(held)
    assert held.reference.calls == []
    none = context(monkeypatch, algorithm, beta=0.0, reference=False)
    stats_none = run_step(none)
    assert stats_held == stats_none
    a, b = weights(held.policy), weights(none.policy)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("algorithm", ["grpo", "ppo"])
def test_beta_positive_runs_one_reference_forward_per_chunk_without_autograd(monkeypatch, algorithm):
    ctx = context(monkeypatch, algorithm, beta=0.04, minibatch=2)
    run_step(ctx)
    assert ctx.reference.calls == [False, False]  # ROWS / minibatch chunks, autograd off


@pytest.mark.parametrize("mu", [1, 2])
def test_old_logprobs_cost_no_forward(monkeypatch, mu):
    ctx = context(monkeypatch, beta=0.0, mu=mu, minibatch=2, grad_accum=2)
    counting = Counting(ctx.policy)
    ctx.trainer.model = counting
    run_step(ctx)
    # one forward (with autograd) per microbatch of each pass: the ratio's old log-probs are the
    # sampler's, so nothing recomputes them, at mu = 1 or later passes alike
    assert counting.calls == [True] * (mu * (ROWS // 2) * 2)


@pytest.mark.parametrize("algorithm", ["grpo", "gspo", "cispo", "ppo"])
def test_step_metrics_match_between_logprob_paths(monkeypatch, algorithm):
    full = run_step(context(monkeypatch, algorithm, beta=0.04, logprobs="full"))
    ours = run_step(context(monkeypatch, algorithm, beta=0.04, logprobs="completion"))
    # the MoE load metric covers the layers that ran: the full path also routes the MTP block
    full.pop("moe/load_max_over_mean"), ours.pop("moe/load_max_over_mean")
    assert full.keys() == ours.keys()
    assert all(abs(full[k] - ours[k]) < 1e-5 for k in full), (full, ours)
