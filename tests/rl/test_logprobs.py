"""The optimised log-prob path (head only at completion positions, chunked, no MTP) against the
straightforward one (full logits + token_logprobs): log-probs, losses and gradients agree within
fp32 rounding, on native and transformers policies; MTP still trains in pretraining."""

import pytest
import torch

from reasonrl.model import create
from reasonrl.model.hf_policy import HFPolicy
from reasonrl.rl import logprobs as lp
from reasonrl.rl.config import RLSection
from reasonrl.rl.logprobs import HeadLogprobs, sequence_logprobs
from reasonrl.rl.ppo import ActorCritic, ppo_loss
from reasonrl.rl.step import surrogate_loss
from reasonrl.rl.update import reference_logprobs
from tests.sampler.helpers import tiny_gpt2, tiny_llama, tiny_qwen2

ATOL = 1e-5


def native():
    return create("tiny", seed=0, vocab_size=64).train()


def qwen2():
    return HFPolicy(tiny_qwen2(seed=0, vocab=96)).train()


def llama():
    return HFPolicy(tiny_llama(seed=0)).train()


def qwen2_tied():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                      intermediate_size=64, vocab_size=80, tie_word_embeddings=True)
    return HFPolicy(Qwen2ForCausalLM(cfg)).train()


def gpt2():
    return HFPolicy(tiny_gpt2(seed=0)).eval()  # eval: GPT-2's dropout would make two forwards differ


MODELS = {"native": native, "qwen2": qwen2, "llama": llama, "qwen2_tied": qwen2_tied, "gpt2": gpt2}


def batch(model, rows=4, width=11, seed=0):
    """Random ids, unequal prompt and completion spans, noisy old and reference log-probs."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, model.config.vocab_size, (rows, width), generator=g)
    mask = torch.zeros(rows, width - 1)
    for row, (start, length) in enumerate([(2, 8), (3, 2), (4, 5), (6, 1)][:rows]):
        mask[row, start:start + length] = 1
    noise = lambda: 0.1 * torch.randn(rows, width - 1, generator=g)  # noqa: E731
    with torch.no_grad():
        logp = sequence_logprobs(model, ids, mask, 0.7, "full").logp
    return {"ids": ids, "mask": mask, "old": (logp + noise()) * mask, "ref": (logp + noise()) * mask,
            "adv": torch.tensor([1.0, -0.5, 0.25, -1.0][:rows]), "num_tokens": float(mask.sum())}


def loss_and_grads(model, mb, rl):
    model.zero_grad(set_to_none=True)
    loss, metrics, _ = surrogate_loss(model, mb, rl)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), {k: float(v) for k, v in metrics.items()}, grads


@pytest.mark.parametrize("name", sorted(MODELS))
def test_completion_logprobs_match_the_full_logits(name):
    model = MODELS[name]()
    mb = batch(model)
    full = sequence_logprobs(model, mb["ids"], mb["mask"], 0.7, "full")
    ours = sequence_logprobs(model, mb["ids"], mb["mask"], 0.7, "completion")
    where = mb["mask"].bool()
    assert torch.allclose(ours.logp[where], full.logp[where], atol=ATOL, rtol=0)
    assert torch.allclose(ours.entropy[where], full.entropy[where], atol=ATOL, rtol=0)
    assert (ours.logp[~where] == 0).all()  # unscored positions are not computed at all


@pytest.mark.parametrize("algorithm", ["grpo", "gspo", "cispo"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_losses_metrics_and_gradients_match_the_full_logits(name, algorithm):
    model = MODELS[name]()
    mb = batch(model)
    rl = {path: RLSection(algorithm=algorithm, temperature=0.7, beta=0.04, max_new_tokens=8, logprobs=path)
          for path in ("full", "completion")}
    loss_f, metrics_f, grads_f = loss_and_grads(model, mb, rl["full"])
    loss_c, metrics_c, grads_c = loss_and_grads(model, mb, rl["completion"])
    assert abs(float(loss_c - loss_f)) < ATOL
    assert metrics_c.keys() == metrics_f.keys()
    assert all(abs(metrics_c[k] - metrics_f[k]) < ATOL for k in metrics_f), (metrics_c, metrics_f)
    assert grads_c.keys() == {k for k in grads_f if not k.startswith("mtp.")}  # MTP never ran
    for key, g in grads_c.items():
        assert torch.allclose(g, grads_f[key], atol=ATOL, rtol=1e-4), key


def test_ppo_actor_and_critic_loss_match_the_full_logits():
    model = ActorCritic.create(native())
    mb = batch(model.actor)
    with torch.no_grad():
        values = model.values(mb["ids"])[:, :-1]
    mb.update(adv=torch.randn(mb["mask"].shape, generator=torch.Generator().manual_seed(1)) * mb["mask"],
              ret=values + 0.5 * mb["mask"], old_v=values)
    out = {}
    for path in ("full", "completion"):
        model.zero_grad(set_to_none=True)
        loss, metrics, _ = ppo_loss(model, mb, RLSection(algorithm="ppo", logprobs=path, temperature=0.7))
        loss.backward()
        out[path] = loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert abs(float(out["full"][0] - out["completion"][0])) < ATOL
    for key, g in out["completion"][1].items():
        assert torch.allclose(g, out["full"][1][key], atol=ATOL, rtol=1e-4), key


@pytest.mark.parametrize("name", ["native", "qwen2"])
def test_reference_logprobs_run_without_autograd_and_match(name):
    model = MODELS[name]()
    mb = batch(model)
    full = reference_logprobs(model, mb["ids"], mb["mask"], 0.7, 3, "full")
    ours = reference_logprobs(model, mb["ids"], mb["mask"], 0.7, 3, "completion")
    assert not ours.requires_grad and not full.requires_grad
    where = mb["mask"].bool()
    assert torch.allclose(ours[where], full[where], atol=ATOL, rtol=0)


def test_head_logprobs_gradcheck_with_bias_and_small_chunks(monkeypatch):
    monkeypatch.setattr(lp, "CHUNK_ELEMENTS", 2 * 7)  # 2 rows per chunk at V = 7: several chunks
    g = torch.Generator().manual_seed(0)
    h = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(7, 3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(7, dtype=torch.float64, generator=g, requires_grad=True)
    t = torch.randint(0, 7, (5,), generator=g)
    assert torch.autograd.gradcheck(lambda *a: HeadLogprobs.apply(*a, t, 0.7)[0], (h, w, b))


def test_mtp_skip_leaves_logits_and_trunk_gradients_unchanged():
    model = native()
    assert len(model.mtp) > 0 and model._main_moe_layers() < len(model.moe_layers())  # MoE MTP block
    ids = torch.randint(0, 64, (3, 9), generator=torch.Generator().manual_seed(0))
    out = {}
    for mtp in (True, False):
        model.zero_grad(set_to_none=True)
        o = model.forward_train(ids, mtp=mtp)
        torch.log_softmax(o.logits, -1)[..., 3].sum().backward()
        out[mtp] = o, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    (on, grads_on), (off, grads_off) = out[True], out[False]
    assert torch.equal(on.logits, off.logits) and not off.mtp_logits
    assert torch.equal(off.moe_load, on.moe_load[: len(off.moe_load)])
    assert grads_off.keys() == {k for k in grads_on if not k.startswith("mtp.")}
    assert all(torch.allclose(g, grads_on[k], atol=1e-6, rtol=0) for k, g in grads_off.items())
    mtp_bias = [m.gate.e_score_correction_bias.clone() for m in model.moe_layers()[model._main_moe_layers():]]
    model.update_moe_bias(off.moe_load)  # main-layer loads only: MTP biases untouched
    assert all(torch.equal(b, m.gate.e_score_correction_bias)
               for b, m in zip(mtp_bias, model.moe_layers()[model._main_moe_layers():]))


def test_pretraining_still_trains_mtp():
    from reasonrl.stages.pretrain import lm_loss

    model = native()
    window = torch.randint(0, 64, (2, 10), generator=torch.Generator().manual_seed(0))
    loss, metrics, _ = lm_loss(model, window)
    loss.backward()
    assert "mtp_loss" in metrics
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters()
               if n.startswith("mtp.") and "e_score_correction_bias" not in n)
