"""Router, experts, balance loss and auxiliary-loss-free balancing."""

import math

import torch

from reasonrl.model import ModelConfig, create
from reasonrl.model.moe import MoE, sequence_balance_loss


def _gate(E=4, G=2, topk_group=1, K=2, **kw):
    cfg = ModelConfig(hidden_size=E, n_routed_experts=E, n_group=G, topk_group=topk_group,
                      num_experts_per_tok=K, **kw)
    moe = MoE(cfg)
    with torch.no_grad():
        moe.gate.weight.copy_(torch.eye(E))  # router logits = the input itself
    return moe


def test_router_by_hand_bias_selects_but_never_weighs():
    moe = _gate()
    x = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    s = torch.sigmoid(x[0])
    w, idx, _ = moe.gate(x)
    assert sorted(idx[0].tolist()) == [0, 1]  # group {0,1} wins: s0 + s1 > s2 + s3
    order = idx[0].argsort()
    assert torch.allclose(w[0][order], torch.stack([s[0], s[1]]) / (s[0] + s[1]) * 2.5)
    with torch.no_grad():
        moe.gate.e_score_correction_bias.copy_(torch.tensor([0.0, 0.0, 1.0, 1.0]))
    w, idx, _ = moe.gate(x)
    assert sorted(idx[0].tolist()) == [2, 3]  # the bias flips the group ...
    order = idx[0].argsort()
    assert torch.allclose(w[0][order], torch.stack([s[2], s[3]]) / (s[2] + s[3]) * 2.5)  # ... not the weights


def test_dropped_groups_are_never_chosen():
    # group {0,1} scores 0.95 + 0.05 = 1.0 < {2,3}'s 0.6 + 0.55: expert 0 (best single) must be dropped
    moe = _gate(K=2)
    logits = torch.logit(torch.tensor([[0.95, 0.05, 0.6, 0.55]]))
    _, idx, _ = moe.gate(logits)
    assert sorted(idx[0].tolist()) == [2, 3]
    # and with K larger than the kept group, selection still stays inside kept groups (-inf mask)
    moe = _gate(E=8, G=4, topk_group=2, K=3)
    x = torch.randn(64, 8)
    _, idx, scores = moe.gate(x)
    groups = idx // 2
    assert all(len(set(g.tolist())) <= 2 for g in groups)


def test_no_norm_topk_prob_keeps_raw_affinities():
    moe = _gate(norm_topk_prob=False, routed_scaling_factor=1.0)
    x = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    w, idx, _ = moe.gate(x)
    assert torch.allclose(w[0], torch.sigmoid(x[0, idx[0]]))


def test_experts_match_a_per_token_reference():
    torch.manual_seed(0)
    m = create("tiny", seed=0)
    moe = m.layers[1].mlp
    x = torch.randn(2, 9, m.config.hidden_size)
    y, load, _ = moe(x)
    w, idx, _ = moe.gate(x.reshape(-1, x.shape[-1]))
    ref = []
    for t, xt in enumerate(x.reshape(-1, x.shape[-1])):
        out = moe.shared_experts(xt)
        for k in range(idx.shape[1]):
            e = idx[t, k]
            g, u = (moe.experts.gate_up_proj[e] @ xt).chunk(2)
            out = out + w[t, k] * (moe.experts.down_proj[e] @ (torch.nn.functional.silu(g) * u))
        ref.append(out)
    assert torch.allclose(y.reshape(-1, x.shape[-1]), torch.stack(ref), atol=1e-5)
    assert load.sum() == 18 * 2 and torch.equal(load, torch.bincount(idx.flatten(), minlength=8).float())


def test_sequence_balance_loss_by_hand():
    scores = torch.tensor([[[0.8, 0.2], [0.6, 0.4]]])
    idx = torch.tensor([[[0], [0]]])
    # f = E / (K T) * counts = 2/2 * [2, 0]; P = mean of normalised scores = [0.7, 0.3]
    assert math.isclose(sequence_balance_loss(scores, idx, 0.1).item(), 0.1 * 2 * 0.7, rel_tol=1e-6)
    # perfectly balanced routing with uniform scores gives alpha * 1
    u = torch.full((1, 4, 2), 0.5)
    assert math.isclose(sequence_balance_loss(u, torch.tensor([[[0], [1], [0], [1]]]), 1.0).item(), 1.0)


def test_update_bias_sign_rule():
    m = create("tiny", seed=0)
    n = len(m.moe_layers())
    load = torch.tensor([[4.0, 1, 1, 2, 2, 2, 2, 2]]).repeat(n, 1)
    m.update_moe_bias(load, gamma=0.01)
    b = m.moe_layers()[0].gate.e_score_correction_bias
    assert b.dtype == torch.float32
    assert torch.allclose(b, torch.tensor([-0.01, 0.01, 0.01, 0, 0, 0, 0, 0]))


def collapse_run(gamma: float, steps: int = 200, boost: float = 3.0, skew: float = 1.0) -> list[float]:
    """One MoE layer trained to regress a teacher on skewed inputs (mean shifted along u), with a
    router that starts collapsed (experts 0 and 1 aligned with u). -> max/mean load per step."""
    torch.manual_seed(0)
    cfg = ModelConfig(hidden_size=32, moe_intermediate_size=32, n_routed_experts=8,
                      num_experts_per_tok=2, n_group=1, topk_group=1)
    moe = MoE(cfg)
    with torch.no_grad():
        for p in moe.parameters():
            p.normal_(0, 0.1)
    u = torch.nn.functional.normalize(torch.randn(32), dim=0)
    with torch.no_grad():
        moe.gate.weight[:2] += boost * u
    teacher = torch.randn(32, 32) / 32 ** 0.5
    opt = torch.optim.Adam(moe.parameters(), lr=3e-3)
    ratios = []
    for _ in range(steps):
        x = torch.randn(4, 64, 32) + skew * u
        y, load, _ = moe(x)
        loss = (y - torch.tanh(x @ teacher)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        moe.update_bias(load, gamma)
        ratios.append((load.max() / load.mean()).item())
    return ratios


def test_aux_loss_free_balancing_undoes_a_collapsed_router():
    collapsed = sum(collapse_run(gamma=0.0)[-50:]) / 50
    balanced = sum(collapse_run(gamma=0.003)[-50:]) / 50
    print(f"max/mean expert load, last 50 steps: gamma=0 {collapsed:.2f}, gamma=0.003 {balanced:.2f}")
    assert collapsed > 2.8  # 8 experts, top-2: 4.0 is total collapse, 1.0 perfect balance
    assert balanced < 1.5


def test_grouped_gemm_and_per_expert_fallback_agree(monkeypatch):
    import reasonrl.model.moe as moe_mod

    m = create("tiny", seed=0)
    moe = m.layers[1].mlp
    x = torch.randn(3, 7, m.config.hidden_size)
    grads = []
    for ok in (True, False):
        monkeypatch.setattr(moe_mod, "_grouped_mm_ok", lambda a, b, ok=ok: ok and hasattr(torch.nn.functional, "grouped_mm"))
        moe.zero_grad()
        y, _, _ = moe(x)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        grads.append((y.detach(), moe.experts.gate_up_proj.grad.clone(), moe.experts.down_proj.grad.clone()))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)
