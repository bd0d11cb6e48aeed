"""MLA paths, the latent cache contract of docs/design.md, MTP, determinism, save/load."""

import pytest
import torch

from reasonrl.model import create, from_pretrained
from reasonrl.model.mtp import mtp_loss

from .conftest import randomize_bias


def _model(variant, **kw):
    m = create("tiny", seed=0, **{**variant, **kw}).eval()
    randomize_bias(m)
    return m


@torch.no_grad()
def test_naive_and_absorbed_mla_agree(variant):
    m = _model(variant)
    attn = m.layers[1].self_attn
    x = torch.randn(2, 12, m.config.hidden_size)
    pos = torch.arange(12).expand(2, -1)
    cos, sin = m.rotary.cos_sin(pos, x.dtype)
    naive = attn(x, cos, sin, absorb=False)
    absorbed = attn(x, cos, sin, absorb=True)
    assert naive.abs().max() > 1e-3  # not trivially zero
    assert (naive - absorbed).abs().max() <= 1e-4
    # with a cache too (prefill 7 then 5 single steps, forced absorbed / naive)
    for absorb in (False, True):
        c = m.make_cache(2, 16)
        outs = [attn(x[:, :7], cos[:, :7], sin[:, :7], c, 0, pos[:, :7], absorb=absorb)]
        for t in range(7, 12):
            outs.append(attn(x[:, t:t + 1], cos[:, t:t + 1], sin[:, t:t + 1], c, 0, pos[:, t:t + 1], absorb=absorb))
        assert (torch.cat(outs, 1) - naive).abs().max() <= 1e-4


@torch.no_grad()
def test_cached_decode_matches_full_forward(variant):
    m = _model(variant)
    ids = torch.randint(0, m.config.vocab_size, (3, 14))
    full = m(ids)
    c = m.make_cache(3, 20)
    steps = [m(ids[:, :5], cache=c)]
    for t in range(5, 14):
        steps.append(m(ids[:, t:t + 1], positions=torch.full((3, 1), t), cache=c))
    assert (torch.cat(steps, 1) - full).abs().max() <= 1e-4


@torch.no_grad()
def test_right_padded_prompts_decode_at_own_positions_and_keep():
    m = _model({"rope_scaling": None})
    V, lens, T = m.config.vocab_size, [3, 6, 4], 10
    seqs = [torch.randint(2, V, (T,)) for _ in lens]
    refs = [m(s[None])[0] for s in seqs]  # each row alone, unpadded
    prompt = torch.stack([torch.cat([s[:n], torch.zeros(max(lens) - n, dtype=torch.long)]) for s, n in zip(seqs, lens)])
    c = m.make_cache(3, 16)
    pre = m(prompt, cache=c)  # right-padded prefill
    for b, n in enumerate(lens):
        assert (pre[b, :n] - refs[b][:n]).abs().max() <= 1e-4
    pos = torch.tensor(lens)
    rows = list(range(3))
    for step in range(T - max(lens)):
        if step == 2:  # drop row 1 and reverse the others' order
            keep = torch.tensor([2, 0])
            c.keep(keep)
            rows, pos = [rows[i] for i in keep], pos[keep]
            assert c.batch_size == 2 and c.max_len == 16
        tok = torch.stack([seqs[r][p] for r, p in zip(rows, pos)])[:, None]
        out = m(tok, positions=pos[:, None], cache=c)
        for i, r in enumerate(rows):
            assert (out[i, 0] - refs[r][pos[i]]).abs().max() <= 1e-4
        pos = pos + 1


@torch.no_grad()
def test_cache_stores_only_latent_and_rope_key():
    m = _model({})
    cfg = m.config
    c = m.make_cache(2, 8)
    assert c.kv.shape == (cfg.num_hidden_layers, 2, 8, cfg.kv_lora_rank)
    assert c.pe.shape == (cfg.num_hidden_layers, 2, 8, cfg.qk_rope_head_dim)
    assert len(c.mtp) == cfg.num_nextn_predict_layers and c.mtp[0].kv.shape[0] == 1
    assert c.bytes_per_token_per_layer() == 4 * (cfg.kv_lora_rank + cfg.qk_rope_head_dim)
    m(torch.randint(0, 99, (2, 3)), cache=c)
    assert c.kv[:, :, 3:].abs().sum() == 0 and c.kv[:, :, :3].abs().sum() > 0
    # what is cached is the normalised latent: rms ~ the kv_a_layernorm weight (ones)
    rms = c.kv[:, :, :3].pow(2).mean(-1).sqrt()
    assert torch.allclose(rms, torch.ones_like(rms), atol=1e-3)


@torch.no_grad()
def test_forward_train_and_mtp_contract():
    m = _model({})
    ids = torch.randint(0, m.config.vocab_size, (2, 12))
    out = m.forward_train(ids)
    assert out.logits.shape == (2, 12, m.config.vocab_size)
    assert (out.logits - m(ids)).abs().max() <= 1e-5
    assert len(out.mtp_logits) == 1 and out.mtp_logits[0].shape == (2, 11, m.config.vocab_size)
    # 3 MoE layers in the trunk + the MTP block; each row counts T * K routed choices
    assert out.moe_load.shape == (4, m.config.n_routed_experts)
    assert out.moe_load.sum(-1).tolist() == [24 * 2, 24 * 2, 24 * 2, 11 * 2 * 2]
    # forward_hidden + mtp_logits give the same MTP logits (the speculative sampler's path)
    logits, h = m.forward_hidden(ids)
    mtp = m.mtp_logits(h[:, :-1], ids[:, 1:], torch.arange(11).expand(2, -1))
    assert (mtp - out.mtp_logits[0]).abs().max() <= 1e-5
    assert out.aux_loss.item() == 0.0
    loss = mtp_loss(out.mtp_logits, ids, weight=0.3)
    ce = torch.nn.functional.cross_entropy(out.mtp_logits[0][:, :-1].reshape(-1, 512), ids[:, 2:].reshape(-1))
    assert torch.allclose(loss, 0.3 * ce)


@torch.no_grad()
def test_cached_mtp_step_equals_uncached():
    m = _model({})
    ids = torch.randint(0, m.config.vocab_size, (2, 10))
    _, h = m.forward_hidden(ids)
    pos = torch.arange(9).expand(2, -1)
    full = m.mtp_logits(h[:, :-1], ids[:, 1:], pos)
    c = m.make_cache(2, 16)
    _, hc = m.forward_hidden(ids[:, :4], cache=c)
    outs = [m.mtp_logits(hc[:, :3], ids[:, 1:4], pos[:, :3], cache=c)]
    for t in range(4, 10):  # main step at t, then the MTP step at position t - 1
        _, ht = m.forward_hidden(ids[:, t:t + 1], torch.full((2, 1), t), cache=c)
        hc = torch.cat([hc, ht], 1)
        outs.append(m.mtp_logits(hc[:, t - 1:t], ids[:, t:t + 1], pos[:, t - 1:t], cache=c))
    assert (torch.cat(outs, 1) - full).abs().max() <= 1e-4


def test_backward_reaches_every_parameter():
    m = create("tiny", seed=0, aux_loss_alpha=1e-2)
    ids = torch.randint(0, 512, (2, 16))
    out = m.forward_train(ids)
    assert out.aux_loss.item() > 0
    loss = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, 512), ids[:, 1:].reshape(-1))
    (loss + mtp_loss(out.mtp_logits, ids, 0.3) + out.aux_loss).backward()
    no_grad = [n for n, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert no_grad == []
    assert all(b.grad is None for n, b in m.named_buffers() if "bias" in n)


def test_same_seed_same_init_and_save_load_round_trip(tmp_path):
    a, b = create("tiny", seed=3), create("tiny", seed=3)
    c = create("tiny", seed=4)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["layers.0.self_attn.kv_b_proj.weight"], c.state_dict()["layers.0.self_attn.kv_b_proj.weight"])
    randomize_bias(a)
    a.save_pretrained(tmp_path)
    back = from_pretrained(tmp_path)
    assert back.config == a.config
    sa, sr = a.state_dict(), back.state_dict()
    assert sa.keys() == sr.keys() and all(torch.equal(sa[k], sr[k]) for k in sa)
    ids = torch.randint(0, 512, (1, 8))
    assert torch.equal(a.eval()(ids), back(ids))


def test_init_std_follows_config():
    m = create("tiny", seed=0, initializer_range=0.05)
    w = m.layers[0].mlp.gate_proj.weight
    assert abs(w.std().item() - 0.05) < 0.005
    assert torch.all(m.norm.weight == 1)


def test_cache_overflow_is_an_error():
    m = _model({})
    c = m.make_cache(1, 4)
    with pytest.raises(IndexError):
        m(torch.zeros(1, 5, dtype=torch.long), cache=c)


@torch.no_grad()
def test_casting_keeps_router_bias_and_rope_frequencies_fp32():
    m = _model({})
    bias = m.moe_layers()[0].gate.e_score_correction_bias.clone()
    m = m.to(torch.bfloat16)
    g = m.moe_layers()[0].gate
    assert g.weight.dtype == torch.bfloat16 and m.rotary.inv_freq.dtype == torch.float32
    assert g.e_score_correction_bias.dtype == torch.float32 and torch.equal(g.e_score_correction_bias, bias)
    out = m(torch.randint(0, 512, (1, 4)))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    assert any(n.endswith("e_score_correction_bias") for n, _ in m.named_buffers())


@torch.no_grad()
def test_hidden_states_are_the_final_normed_trunk():
    # the Policy interface's hidden_states: lm_head of it is the forward's logits (what a value
    # head reads instead of the logits); positions are passed through like forward's
    m = _model({})
    ids = torch.randint(0, m.config.vocab_size, (2, 9))
    h = m.hidden_states(ids)
    assert h.shape == (2, 9, m.config.hidden_size)
    torch.testing.assert_close(m.lm_head(h), m(ids), atol=1e-5, rtol=0)
    _, pre_norm = m.forward_hidden(ids)
    torch.testing.assert_close(h, m.norm(pre_norm))
    pos = torch.arange(3, 12).expand(2, -1)
    torch.testing.assert_close(m.lm_head(m.hidden_states(ids, pos)), m(ids, pos), atol=1e-5, rtol=0)
