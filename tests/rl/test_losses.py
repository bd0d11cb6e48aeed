"""Losses against hand-computed values and autograd."""

import math

import pytest
import torch

from reasonrl.rl import losses
from reasonrl.rl.losses import (
    AGGREGATIONS,
    k3_kl,
    policy_loss,
    ppo_policy_loss,
    token_entropy,
    token_logprobs,
    value_loss,
)


def _t(x):
    return torch.tensor(x, dtype=torch.float32)


def test_token_logprobs_hand_value_and_temperature():
    # logits [0, ln 3] -> p = [1/4, 3/4]; at temperature 2: [0, ln 3 / 2] -> p1 = sqrt3/(1+sqrt3)
    logits = _t([[[0.0, math.log(3.0)]]])
    ids = torch.tensor([[1]])
    assert token_logprobs(logits, ids).item() == pytest.approx(math.log(0.75), abs=1e-6)
    s3 = math.sqrt(3.0)
    assert token_logprobs(logits, ids, 2.0).item() == pytest.approx(math.log(s3 / (1 + s3)), abs=1e-6)


def test_token_logprobs_chunked_matches_naive(monkeypatch):
    monkeypatch.setattr(losses, "_CHUNK_ROWS", 4)  # force several chunks over 3*5 = 15 rows
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, generator=g, requires_grad=True)
    ids = torch.randint(0, 11, (3, 5), generator=g)
    naive = torch.log_softmax(logits / 0.7, -1).gather(-1, ids[..., None]).squeeze(-1)
    ours = token_logprobs(logits, ids, 0.7)
    torch.testing.assert_close(ours, naive)
    (g1,) = torch.autograd.grad(ours.sum(), logits)
    (g2,) = torch.autograd.grad(naive.sum(), logits)
    torch.testing.assert_close(g1, g2)
    ent = token_entropy(logits, 0.7)
    p = torch.softmax(logits / 0.7, -1)
    torch.testing.assert_close(ent, -(p * p.log()).sum(-1))


def test_entropy_uniform_is_log_v():
    assert token_entropy(torch.zeros(1, 2, 8))[0].tolist() == pytest.approx([math.log(8)] * 2)


def test_k3_hand_value():
    # pi = 0.5, pi_ref = 0.25: ratio 0.5 -> 0.5 - ln 0.5 - 1 = 0.193147
    v = k3_kl(_t([math.log(0.5)]), _t([math.log(0.25)]))
    assert v.item() == pytest.approx(0.5 - math.log(0.5) - 1, abs=1e-6)
    assert k3_kl(_t([-1.3]), _t([-1.3])).item() == 0.0


# B=2, T=3, ratio 1 everywhere, beta 0: per-token loss = -A, A = [1, -2]
# mask row 0: 3 tokens (loss -1 each), row 1: 1 token (loss +2)
_MASK = _t([[1, 1, 1], [1, 0, 0]])
_ADV = _t([1.0, -2.0])


@pytest.mark.parametrize(
    "aggregation, max_len, expected",
    [
        ("seq_mean_token_mean", None, 0.5),  # (mean(-1,-1,-1) + 2) / 2 = 0.5
        ("token_mean", None, -0.25),  # (-3 + 2) / 4 tokens
        ("constant", 4, -0.125),  # (-3 + 2) / (2 seqs * 4)
    ],
)
def test_aggregations_hand_values(aggregation, max_len, expected):
    logp = _t([[-1.0, -2.0, -0.5], [-0.3, -9.0, -9.0]])
    loss, m = policy_loss(logp, logp.clone(), _ADV, _MASK, aggregation=aggregation, max_len=max_len)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert m["loss"] == pytest.approx(expected, abs=1e-6)
    assert m["clip_frac/low"] == 0.0 and m["clip_frac/high"] == 0.0 and m["kl"] == 0.0


def test_token_mean_window_normaliser():
    # 4 real tokens in this micro-batch, 10 in the accumulation window: (-3 + 2) / 10
    logp = torch.zeros(2, 3)
    loss, _ = policy_loss(logp, logp, _ADV, _MASK, aggregation="token_mean", num_tokens=10)
    assert loss.item() == pytest.approx(-0.1)
    with pytest.raises(ValueError, match="num_tokens"):
        policy_loss(logp, logp, _ADV, _MASK, num_tokens=10)


def test_clipping_hand_values_and_gradients():
    # one token per row: ratios [1.5, 0.5, 0.5, 1.5], A = [1, -1, 1, -1], eps_low .2, eps_high .28
    # row 0: min(1.5, 1.28) -> clipped high, loss -1.28, no gradient
    # row 1: min(-0.5, -0.8) -> clipped low, loss 0.8, no gradient
    # row 2: min(0.5, 0.8) = 0.5 (unclipped branch), loss -0.5, d/dlogp = -A*rho/4 = -0.125
    # row 3: min(-1.5, -1.28) = -1.5 (unclipped), loss 1.5, d/dlogp = -A*rho/4 = 0.375
    old = torch.zeros(4, 1)
    logp = torch.log(_t([[1.5], [0.5], [0.5], [1.5]])).requires_grad_()
    adv = _t([1.0, -1.0, 1.0, -1.0])
    loss, m = policy_loss(logp, old, adv, torch.ones(4, 1), eps_low=0.2, eps_high=0.28,
                          aggregation="token_mean")
    assert loss.item() == pytest.approx((-1.28 + 0.8 - 0.5 + 1.5) / 4, abs=1e-6)
    assert m["clip_frac/low"] == 0.25 and m["clip_frac/high"] == 0.25
    loss.backward()
    assert logp.grad.flatten().tolist() == pytest.approx([0.0, 0.0, -0.125, 0.375], abs=1e-6)


def test_kl_term_and_metric():
    # A = 0: loss = beta * k3 = 0.1 * 0.193147 at every token, whatever the aggregation
    logp = torch.full((2, 3), math.log(0.5))
    ref = torch.full((2, 3), math.log(0.25))
    k3 = 0.5 - math.log(0.5) - 1
    for agg in AGGREGATIONS:
        loss, m = policy_loss(logp, logp, torch.zeros(2), torch.ones(2, 3), beta=0.1,
                              ref_logp=ref, aggregation=agg, max_len=3)
        assert loss.item() == pytest.approx(0.1 * k3, abs=1e-6)
        assert m["kl"] == pytest.approx(k3, abs=1e-6)
    with pytest.raises(ValueError, match="ref_logp"):
        policy_loss(logp, logp, torch.zeros(2), torch.ones(2, 3), beta=0.1)


def test_grpo_k3_gradient_coefficient():
    # At rho = 1 (unclipped), d loss / d logp_t = -(A + beta (pi_ref/pi - 1)) / (|o_i| * B)
    # for seq_mean_token_mean: the GRPO gradient coefficient of DeepSeekMath eq. (20).
    g = torch.Generator().manual_seed(1)
    logp = (-torch.rand(2, 4, generator=g) * 3).requires_grad_()
    ref = -torch.rand(2, 4, generator=g) * 3
    mask = _t([[1, 1, 1, 1], [1, 1, 0, 0]])
    adv, beta = _t([0.7, -1.3]), 0.04
    loss, _ = policy_loss(logp, logp.detach(), adv, mask, beta=beta, ref_logp=ref)
    loss.backward()
    coef = adv[:, None] + beta * (torch.exp(ref - logp.detach()) - 1)
    lengths = mask.sum(1, keepdim=True)
    torch.testing.assert_close(logp.grad, -coef / (lengths * 2) * mask)


def test_per_token_advantages_and_ppo_loss():
    # per-token A [[1, -1]], ratio 1 -> token losses [-1, 1]; token_mean = 0, first token only = -1
    logp = torch.zeros(1, 2)
    adv = _t([[1.0, -1.0]])
    loss, _ = ppo_policy_loss(logp, logp, adv, _t([[1, 1]]))
    assert loss.item() == pytest.approx(0.0)
    loss, _ = ppo_policy_loss(logp, logp, adv, _t([[1, 0]]))
    assert loss.item() == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="per token"):
        ppo_policy_loss(logp, logp, _t([1.0]), _t([[1, 1]]))


def test_gspo_sequence_ratio():
    # token ratios 1.1 and 0.9 -> sequence ratio exp(mean log) = sqrt(0.99); A = 2, no clipping
    old = torch.zeros(1, 2)
    logp = torch.log(_t([[1.1, 0.9]])).requires_grad_()
    loss, _ = policy_loss(logp, old, _t([2.0]), torch.ones(1, 2), eps_low=0.5, eps_high=0.5,
                          ratio_level="sequence")
    assert loss.item() == pytest.approx(-2 * math.sqrt(0.99), abs=1e-6)
    loss.backward()  # d/dlogp_t = -A * s / |o| for both tokens (evenly spread)
    assert logp.grad.flatten().tolist() == pytest.approx([-math.sqrt(0.99)] * 2, abs=1e-6)


def test_constant_needs_max_len_and_unknown_aggregation():
    logp = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="max_len"):
        policy_loss(logp, logp, _t([1.0]), torch.ones(1, 2), aggregation="constant")
    with pytest.raises(ValueError, match="unknown aggregation"):
        policy_loss(logp, logp, _t([1.0]), torch.ones(1, 2), aggregation="sum")


def test_value_loss_clipped_hand_values():
    # token 0: (1-2)^2 = 1; clipped V = 0.5 + clamp(0.5, +-0.2) = 0.7 -> (0.7-2)^2 = 1.69 -> 1.69
    # token 1: (2-1)^2 = 1; clipped V = 2 -> 1 -> 1; loss = 0.5 * (1.69 + 1) / 2 = 0.6725
    values = _t([[1.0, 2.0]]).requires_grad_()
    loss, m = value_loss(values, _t([[0.5, 2.0]]), _t([[2.0, 1.0]]), torch.ones(1, 2), clip=0.2)
    assert loss.item() == pytest.approx(0.6725)
    assert m["value_clip_frac"] == 0.5
    loss.backward()  # token 0 takes the clipped branch (no gradient); token 1: 0.5 * 2 * 1 / 2
    assert values.grad.flatten().tolist() == pytest.approx([0.0, 0.5])
    loss, _ = value_loss(values, _t([[0.5, 2.0]]), _t([[2.0, 1.0]]), torch.ones(1, 2), clip=None)
    assert loss.item() == pytest.approx(0.5)
