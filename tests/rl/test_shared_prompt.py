"""Computing each group's prompt once (rl.share_prompt): the same log-probs, entropies, gradients
and RL steps as the per-row forward, within fp32 rounding, for the native model (MoE layers
included) and transformers policies (untied and tied heads)."""

import dataclasses

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from reasonrl.model import create
from reasonrl.model.hf_policy import HFPolicy
from reasonrl.rl.logprobs import prompt_groups, prompt_lengths, sequence_logprobs
from reasonrl.train.loop import OptimConfig, Trainer
from tests.rl.test_step_forwards import context, run_step, weights


def grouped_batch(V: int, prompt_lens=(5, 9, 7), G: int = 3, empty_row: bool = True):
    """G completions of different lengths per prompt, right-padded; optionally one row whose
    completion mask is empty (an overlong-filtered row), which must share nothing and score nothing."""
    g = torch.Generator().manual_seed(1)
    rows, spans = [], []
    for k, p in enumerate(prompt_lens):
        prompt = torch.randint(1, V, (p,), generator=g)
        for i in range(G):
            c = 2 + (k + 2 * i) % 5
            rows.append(torch.cat([prompt, torch.randint(1, V, (c,), generator=g)]))
            spans.append((p, c))
    L = max(len(r) for r in rows)
    ids, mask = torch.zeros(len(rows), L, dtype=torch.long), torch.zeros(len(rows), L - 1)
    for r, (row, (p, c)) in enumerate(zip(rows, spans)):
        ids[r, :len(row)] = row
        mask[r, p - 1:p - 1 + c] = 1
    if empty_row:
        mask[1] = 0
    return ids, mask


def scored(model, ids, mask, prompt_len):
    model.zero_grad()
    out = sequence_logprobs(model, ids, mask, 0.9, prompt_len=prompt_len)
    weight = torch.linspace(0.5, 1.5, out.logp.numel()).view_as(out.logp)  # a loss that weighs every token
    (out.logp * weight).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


def tiny_qwen2():
    torch.manual_seed(0)
    return HFPolicy(Qwen2ForCausalLM(Qwen2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                 num_key_value_heads=2, intermediate_size=128, vocab_size=97,
                                                 tie_word_embeddings=False)))


def tiny_llama_tied():
    torch.manual_seed(0)
    return HFPolicy(LlamaForCausalLM(LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                 num_key_value_heads=2, intermediate_size=128, vocab_size=97,
                                                 tie_word_embeddings=True)))


def test_prompt_groups_by_hand():
    ids = torch.tensor([[5, 6, 7, 1], [5, 6, 8, 2], [5, 6, 7, 3], [4, 6, 7, 3], [5, 6, 7, 9]])
    leaders, of_row = prompt_groups(ids, torch.tensor([3, 3, 3, 3, 2]))
    # rows 0 and 2 share [5, 6, 7]; row 1's third token differs; row 3's first; row 4's length
    assert leaders.tolist() == [0, 1, 3, 4] and of_row.tolist() == [0, 1, 0, 2, 3]


def test_prompt_lengths_from_the_completion_mask():
    mask = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 0], [0, 0, 0, 0.0]])
    assert prompt_lengths(mask).tolist() == [3, 2, 1]


@pytest.mark.parametrize("build", [lambda: create("tiny", seed=0), tiny_qwen2, tiny_llama_tied],
                         ids=["native-moe", "qwen2", "llama-tied"])
def test_shared_prompt_equals_the_per_row_forward(build):
    model = build()
    V = model.config.vocab_size
    ids, mask = grouped_batch(V)
    base, base_grads = scored(model, ids, mask, None)
    shared, shared_grads = scored(model, ids, mask, prompt_lengths(mask))
    assert torch.allclose(shared.logp, base.logp, atol=2e-5, rtol=0)
    assert torch.allclose(shared.entropy, base.entropy, atol=2e-5, rtol=0)
    assert (shared.logp[mask == 0] == 0).all() and (shared.logp[mask == 1] != 0).all()
    assert shared_grads.keys() == base_grads.keys() and len(base_grads) > 0
    for name, grad in base_grads.items():
        assert torch.allclose(shared_grads[name], grad, atol=5e-5, rtol=1e-4), name


def test_moe_loads_count_each_shared_prompt_token_once():
    model = create("tiny", seed=0)
    ids, mask = grouped_batch(model.config.vocab_size, empty_row=False)
    with torch.no_grad():
        shared = sequence_logprobs(model, ids, mask, 1.0, prompt_len=prompt_lengths(mask)).moe_load
    # the 3 prompts once (padded to 9 slots), then every row from its prompt's end to the padded
    # width, against N * L slots for the per-row forward
    N, L = ids.shape
    k = model.config.num_experts_per_tok
    assert shared.sum(-1).tolist() == [float((3 * 9 + N * (L - 5)) * k)] * len(shared)
    assert 3 * 9 + N * (L - 5) < N * L


@pytest.mark.parametrize("algorithm", ["grpo", "ppo"])
def test_an_rl_step_is_the_same_with_the_prompt_shared(monkeypatch, algorithm):
    results = []
    for share in (False, True):
        ctx = context(monkeypatch, algorithm, beta=0.04)
        ctx.rl = dataclasses.replace(ctx.rl, share_prompt=share)
        ctx.reference = ctx.reference.inner  # unwrap the call counter: it hides prefix_hidden
        # Adam's first step is ~lr * sign(grad): rounding noise in near-zero gradients would flip
        # whole updates. eps = 1 makes the update ~lr * grad, so weights compare like gradients.
        ctx.trainer = Trainer(ctx.policy, OptimConfig(lr=1e-2, eps=1.0, total_steps=8))
        before = weights(ctx.policy)
        results.append((run_step(ctx), weights(ctx.policy)))
    (stats_a, w_a), (stats_b, w_b) = results
    assert stats_a.keys() == stats_b.keys()
    for key in stats_a:
        if key.startswith("moe/"):
            continue  # routing counts differ by design: the shared prompt is counted once
        assert stats_b[key] == pytest.approx(stats_a[key], abs=1e-5, rel=1e-4), key
    for key in w_a:
        if key.endswith("e_score_correction_bias"):
            continue  # the router bias follows the routing counts (see above)
        assert torch.allclose(w_b[key], w_a[key], atol=1e-7, rtol=0), key
    assert any(not torch.equal(w_a[k], v) for k, v in before.items())  # the step did train
