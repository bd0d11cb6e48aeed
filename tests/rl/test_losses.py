"""Losses against hand-computed values and autograd."""

import math

import pytest
import torch

from reasonrl.rl import losses
from reasonrl.rl.losses import (
    AGGREGATIONS,
    POLICY_LOSSES,
    cispo_loss,
    gspo_loss,
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


# ---------------------------------------------------------------------------------------- GSPO


def test_gspo_hand_values_and_gradients():
    # eps_low = eps_high = 0.2; seq 0: 2 real tokens + 1 pad, seq 1: 3 real tokens
    # seq 0: log rho [0.3, -0.1] -> log s = 0.1, s = e^0.1 = 1.105171 < 1.2, A = +1: unclipped,
    #        loss -s A = -1.105171; d/dlogp_t = -A s / (|y| B) = -1.105171 / 4 = -0.276293
    # seq 1: log rho [-0.2, -0.4, -0.3] -> log s = -0.3, s = 0.740818 < 0.8, A = -2: clipped low,
    #        loss -min(-1.481636, -1.6) = 1.6, no gradient
    # loss = (-1.105171 + 1.6) / 2 = 0.247414; ratio/mean = (1.105171 + 0.740818) / 2 = 0.922995
    log_rho = _t([[0.3, -0.1, 5.0], [-0.2, -0.4, -0.3]])  # 5.0 sits on padding: ignored
    old = _t([[-1.0, -2.0, -3.0], [-0.5, -1.5, -1.0]])
    logp = (old + log_rho).requires_grad_()
    mask = _t([[1, 1, 0], [1, 1, 1]])
    loss, m = gspo_loss(logp, old, _t([1.0, -2.0]), mask, eps_low=0.2, eps_high=0.2)
    assert loss.item() == pytest.approx(0.247414, abs=1e-6)
    assert m["clip_frac/low"] == 0.5 and m["clip_frac/high"] == 0.0 and m["kl"] == 0.0
    assert m["ratio/mean"] == pytest.approx(0.922995, abs=1e-6)
    loss.backward()
    expected = [[-0.276293, -0.276293, 0.0], [0.0, 0.0, 0.0]]
    torch.testing.assert_close(logp.grad, _t(expected), atol=1e-6, rtol=0)


def test_gspo_on_policy_is_minus_mean_advantage():
    g = torch.Generator().manual_seed(2)
    logp = (-torch.rand(3, 4, generator=g) * 3).requires_grad_()
    mask = _t([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    adv = _t([0.5, -1.0, 2.0])
    loss, m = gspo_loss(logp, logp.detach(), adv, mask)
    assert loss.item() == pytest.approx(-adv.mean().item(), abs=1e-6)
    assert m["ratio/mean"] == pytest.approx(1.0) and m["clip_frac/high"] == 0.0
    loss.backward()  # -A_i / (|y_i| B) spread evenly over each sequence's tokens
    torch.testing.assert_close(logp.grad, -adv[:, None] / (mask.sum(1, keepdim=True) * 3) * mask)


def test_gspo_default_eps_clip_per_sequence():
    # default eps (3e-4, 4e-4): mean log ratio 1e-3 > log(1.0004) clips (A > 0), 1e-4 does not;
    # the clip is one decision for the whole sequence although its second token alone is far off
    old = torch.zeros(2, 2)
    logp = _t([[0.0, 2e-3], [-1e-4, 3e-4]]).requires_grad_()
    loss, m = gspo_loss(logp, old, _t([1.0, 1.0]), torch.ones(2, 2))
    assert m["clip_frac/high"] == 0.5 and m["clip_frac/low"] == 0.0
    assert loss.item() == pytest.approx(-(1.0004 + math.exp(1e-4)) / 2, abs=1e-6)
    loss.backward()
    s1 = math.exp(1e-4)
    assert logp.grad.flatten().tolist() == pytest.approx([0.0, 0.0, -s1 / 4, -s1 / 4], abs=1e-7)


def test_gspo_token_matches_gspo_and_takes_token_advantages():
    g = torch.Generator().manual_seed(3)
    old = -torch.rand(2, 3, generator=g) * 2
    logp0 = old + 0.05 * torch.randn(2, 3, generator=g)
    mask, adv = _t([[1, 1, 1], [1, 1, 0]]), _t([1.0, -0.5])
    grads = []
    for token_level in (False, True):
        logp = logp0.clone().requires_grad_()
        loss, _ = gspo_loss(logp, old, adv, mask, eps_low=0.2, eps_high=0.2, token_level=token_level)
        loss.backward()
        grads.append((loss.detach(), logp.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])
    # per-token advantages: d/dlogp_t = -s_i A_it / (|y_i| B) (unclipped)
    logp = logp0.clone().requires_grad_()
    tok_adv = _t([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    loss, _ = POLICY_LOSSES["gspo_token"](logp=logp, old_logp=old, advantages=tok_adv, mask=mask,
                                          eps_low=0.2, eps_high=0.2)
    loss.backward()
    lengths = mask.sum(1, keepdim=True)
    s = torch.exp(((logp0 - old) * mask).sum(1, keepdim=True) / lengths)
    torch.testing.assert_close(logp.grad, -s * tok_adv / (lengths * 2) * mask)
    with pytest.raises(ValueError, match="one advantage per sequence"):
        gspo_loss(logp, old, tok_adv, mask)


# --------------------------------------------------------------------------------------- CISPO


def test_cispo_hand_values_and_gradients():
    # weight w = sg(clip(rho, 0.8, 1.2)); token loss -w A logp; token_mean over 5 real tokens
    # seq 0 (A = +1): rho [1.5, 1.0] -> w [1.2 (high), 1.0]; logp [-1, -2] -> losses [1.2, 2.0]
    # seq 1 (A = -2): rho [0.5, 1.1, 1.0] -> w [0.8 (low), 1.1, 1.0]; logp [-0.5, -1.5, -1]
    #        -> losses [-0.8, -3.3, -2.0]
    # loss = (1.2 + 2.0 - 0.8 - 3.3 - 2.0) / 5 = -0.58
    # d/dlogp = -w A / 5: seq 0 [-0.24, -0.2], seq 1 [0.32, 0.44, 0.4]; clipped tokens keep a
    # gradient (scaled by the clipped weight), unlike the PPO/GRPO surrogate
    logp = _t([[-1.0, -2.0, -7.0], [-0.5, -1.5, -1.0]]).requires_grad_()
    rho = _t([[1.5, 1.0, 9.0], [0.5, 1.1, 1.0]])  # 9.0 sits on padding: ignored
    old = logp.detach() - rho.log()
    mask = _t([[1, 1, 0], [1, 1, 1]])
    loss, m = cispo_loss(logp, old, _t([1.0, -2.0]), mask, eps_low=0.2, eps_high=0.2)
    assert loss.item() == pytest.approx(-0.58, abs=1e-6)
    assert m["clip_frac/low"] == pytest.approx(0.2) and m["clip_frac/high"] == pytest.approx(0.2)
    assert m["ratio/mean"] == pytest.approx(1.02, abs=1e-6)
    loss.backward()
    torch.testing.assert_close(logp.grad, _t([[-0.24, -0.2, 0.0], [0.32, 0.44, 0.4]]))


def test_cispo_on_policy_gradient_and_default_bounds():
    g = torch.Generator().manual_seed(4)
    logp = (-torch.rand(3, 4, generator=g) * 3).requires_grad_()
    mask = _t([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    adv = _t([0.5, -1.0, 2.0])
    loss, m = cispo_loss(logp, logp.detach(), adv, mask)
    loss.backward()  # w = 1: -A * mask / num_tokens
    torch.testing.assert_close(logp.grad, -adv[:, None] * mask / mask.sum())
    assert m["clip_frac/low"] == 0.0 and m["clip_frac/high"] == 0.0
    # defaults: no lower clip (bound 0), weight capped at 5
    logp = torch.zeros(1, 3, requires_grad=True)
    old = -torch.log(_t([[0.01, 4.0, 7.0]]))  # rho = [0.01, 4, 7] -> w = [0.01, 4, 5]
    loss, m = cispo_loss(logp, old, _t([1.0]), torch.ones(1, 3))
    loss.backward()
    assert logp.grad.flatten().tolist() == pytest.approx([-0.01 / 3, -4 / 3, -5 / 3], abs=1e-6)
    assert m["clip_frac/low"] == 0.0 and m["clip_frac/high"] == pytest.approx(1 / 3)


def test_cispo_kl_and_window_normaliser():
    # A = 0: loss = beta * k3 token mean; num_tokens divides like policy_loss's token_mean
    logp = torch.full((2, 3), math.log(0.5))
    ref = torch.full((2, 3), math.log(0.25))
    k3 = 0.5 - math.log(0.5) - 1
    loss, m = cispo_loss(logp, logp, torch.zeros(2), torch.ones(2, 3), beta=0.1, ref_logp=ref)
    assert loss.item() == pytest.approx(0.1 * k3, abs=1e-6) and m["kl"] == pytest.approx(k3, abs=1e-6)
    loss, _ = cispo_loss(torch.zeros(2, 3), torch.zeros(2, 3), _ADV, _MASK, num_tokens=10)
    assert loss.item() == 0.0  # logp = 0: the value is -w A logp, only the gradient matters
    with pytest.raises(ValueError, match="ref_logp"):
        cispo_loss(logp, logp, torch.zeros(2), torch.ones(2, 3), beta=0.1)


# ---------------------------------------------------------------------------------- the table


def test_policy_losses_share_a_signature_and_agree_on_policy():
    # at rho = 1 with token_mean, GRPO, GSPO(-token) and CISPO all have gradient -A mask / N
    g = torch.Generator().manual_seed(5)
    logp0 = -torch.rand(2, 3, generator=g) * 2
    ref = logp0 + 0.1
    mask, adv = _t([[1, 1, 1], [1, 1, 0]]), _t([1.0, -0.5])
    assert set(POLICY_LOSSES) == {"grpo", "gspo", "gspo_token", "cispo"}
    for name, fn in POLICY_LOSSES.items():
        logp = logp0.clone().requires_grad_()
        loss, m = fn(logp=logp, old_logp=logp0, advantages=adv, mask=mask, ref_logp=ref, beta=0.0,
                     eps_low=0.2, eps_high=0.2, aggregation="token_mean", max_len=None,
                     num_tokens=None)
        assert {"loss", "kl", "clip_frac/low", "clip_frac/high"} <= set(m), name
        assert m["kl"] > 0, name  # reported with a reference even at beta = 0
        loss.backward()
        torch.testing.assert_close(logp.grad, -adv[:, None] * mask / 5, msg=name)
    with pytest.raises(TypeError):
        POLICY_LOSSES["ppo"] = policy_loss  # read-only
