"""Advantage estimators against hand-computed values."""

import math

import pytest
import torch

from reasonrl.rl.advantages import (
    ADVANTAGE_FNS,
    gae,
    group_advantages,
    ppo_token_rewards,
    zero_std_frac,
)


def _close(a, b, tol=1e-6):
    torch.testing.assert_close(a, torch.as_tensor(b, dtype=a.dtype), atol=tol, rtol=0)


def test_grpo_bessel_std_and_zero_groups():
    # group 0: [1, 0, 0, 1], mean 0.5, Bessel var = 4 * 0.25 / 3 = 1/3, std = 0.57735
    # group 1: all zero -> std 0 -> advantage 0 (the 1e-4 keeps it finite)
    r = torch.tensor([1.0, 0, 0, 1, 0, 0, 0, 0])
    adv, m = group_advantages(r, 4, "grpo")
    a = 0.5 / (math.sqrt(1 / 3) + 1e-4)
    _close(adv, [a, -a, -a, a, 0, 0, 0, 0])
    assert m["zero_std_frac"] == 0.5


def test_dr_grpo_no_std():
    adv, _ = group_advantages(torch.tensor([3.0, 1.0, 2.0, 2.0]), 2, "dr_grpo")
    _close(adv, [1.0, -1.0, 0.0, 0.0])


def test_rloo_leave_one_out():
    # r_0 = 1 - (0 + 0 + 1)/3 = 2/3; r_1 = 0 - (1 + 0 + 1)/3 = -2/3
    adv, _ = group_advantages(torch.tensor([1.0, 0, 0, 1]), 4, "rloo")
    _close(adv, [2 / 3, -2 / 3, -2 / 3, 2 / 3])
    # identity: RLOO = G/(G-1) * (r - mean)
    r = torch.tensor([0.3, 1.7, -0.4, 2.0, 5.0, 1.0])
    rloo, _ = group_advantages(r, 3, "rloo")
    dr, _ = group_advantages(r, 3, "dr_grpo")
    _close(rloo, dr * 1.5, 1e-5)


def test_reinforce_pp_batch_whitening():
    # groups [1, 0], [1, 1] -> centred [0.5, -0.5, 0, 0]; batch mean 0,
    # Bessel std = sqrt(0.5 / 3) = 0.408248
    adv, m = group_advantages(torch.tensor([1.0, 0, 1, 1]), 2, "reinforce_pp")
    a = 0.5 / (math.sqrt(0.5 / 3) + 1e-4)
    _close(adv, [a, -a, 0, 0])
    assert m["zero_std_frac"] == 0.5


def test_dispatch_table_and_errors():
    assert set(ADVANTAGE_FNS) == {"grpo", "dr_grpo", "rloo", "reinforce_pp"}
    with pytest.raises(ValueError, match="unknown advantage mode"):
        group_advantages(torch.zeros(4), 2, "ppo")
    with pytest.raises(ValueError, match="groups of 3"):
        group_advantages(torch.zeros(4), 3)
    with pytest.raises(ValueError, match="1-D"):
        group_advantages(torch.zeros(2, 2), 2)


def test_zero_std_frac_exact_equality():
    r = torch.tensor([1.0, 1.0, 0.5, 0.5, 0.0, 1.0])
    assert zero_std_frac(r, 2) == pytest.approx(2 / 3)


def test_gae_lambda_one_is_monte_carlo_and_lambda_zero_is_td():
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 0.6, 0.7]])
    mask = torch.ones(1, 3)
    # lambda = gamma = 1: A_t = R - V_t = [0.5, 0.4, 0.3], returns = R = 1
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    _close(adv, [[0.5, 0.4, 0.3]])
    _close(ret, [[1.0, 1.0, 1.0]])
    # lambda = 0: A_t = delta_t = [0.6-0.5, 0.7-0.6, 1-0.7]
    adv, _ = gae(rewards, values, mask, gamma=1.0, lam=0.0)
    _close(adv, [[0.1, 0.1, 0.3]])


def test_gae_discounted_hand_values():
    # gamma = lam = 0.5: delta2 = 1 - 0.7 = 0.3, delta1 = 0.5*0.7 - 0.6 = -0.25,
    # delta0 = 0.5*0.6 - 0.5 = -0.2; A2 = 0.3, A1 = -0.25 + 0.25*0.3 = -0.175,
    # A0 = -0.2 + 0.25*(-0.175) = -0.24375
    adv, ret = gae(torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.5, 0.6, 0.7]]),
                   torch.ones(1, 3), gamma=0.5, lam=0.5)
    _close(adv, [[-0.24375, -0.175, 0.3]])
    _close(ret, [[0.25625, 0.425, 1.0]])


def test_gae_right_padding_terminates():
    # row 1 ends at t=1: the value 9.0 in the padding must not bootstrap into it
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.6, 0.7], [0.2, 0.4, 9.0]])
    mask = torch.tensor([[1.0, 1, 1], [1, 1, 0]])
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    _close(adv, [[0.5, 0.4, 0.3], [0.8, 0.6, 0.0]])
    _close(ret, [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])


def test_ppo_token_rewards_kl_and_terminal_reward():
    # k1 = logp - ref = [0.5, 0, -1]; r_t = -0.1 * k1, plus 2.0 at the last real token (t=2)
    logp = torch.tensor([[-1.0, -2.0, -3.0, -4.0]])
    ref = torch.tensor([[-1.5, -2.0, -2.0, -1.0]])
    mask = torch.tensor([[1.0, 1, 1, 0]])
    out = ppo_token_rewards(torch.tensor([2.0]), logp, ref, mask, beta=0.1)
    _close(out, [[-0.05, 0.0, 2.1, 0.0]])
