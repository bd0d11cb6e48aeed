"""Parity with TRL's GRPO loss on the same batch: loss value, gradient w.r.t. the logits, metrics.

TRL's own ``GRPOTrainer._compute_loss`` runs unmodified on a stand-in object that carries only the
attributes it reads. Its model forward (``_get_per_token_logps_and_entropies``) is replaced by
TRL's ``selective_log_softmax`` / ``entropy_from_logits`` on the shared logits, so the comparison
starts from one leaf tensor and covers token log-probs, surrogate, clipping, k3 KL and
aggregation. Everything after the forward is TRL's code.
"""

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

trl_grpo = pytest.importorskip(
    "trl.trainer.grpo_trainer", reason="trl (test-only dependency) is not importable"
)
trl_utils = pytest.importorskip("trl.trainer.utils")

from reasonrl.rl.advantages import group_advantages  # noqa: E402
from reasonrl.rl.losses import TRL_LOSS_TYPES, POLICY_LOSSES, token_logprobs  # noqa: E402

B, T, V, P = 6, 5, 13, 2
MAX_LEN = 7  # > T: the dr_grpo budget is not the padded width
TEMPERATURE = 0.8
EPS_LOW, EPS_HIGH, BETA = 0.2, 0.28, 0.05
CISPO_CAP = 1.3  # TRL's cispo epsilon_high is the weight cap; ours is 1 + eps_high


class _Accelerator:
    num_processes = 1
    sync_gradients = True

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x


def _stand_in(logits, completion_ids, loss_type, ga=1, spg=1, level="token", eps_high=EPS_HIGH):
    def forward(model, input_ids, attention_mask, logits_to_keep, **kwargs):
        scaled = logits / TEMPERATURE
        logps = trl_utils.selective_log_softmax(scaled, completion_ids)
        return logps, trl_utils.entropy_from_logits(scaled), None

    return SimpleNamespace(
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=spg),
        loss_type=loss_type, beta=BETA, epsilon_low=EPS_LOW, epsilon_high=eps_high,
        importance_sampling_level=level, top_entropy_quantile=1.0, off_policy_mask_threshold=None,
        use_vllm=False, vllm_importance_sampling_correction=False,
        model=SimpleNamespace(training=True), current_gradient_accumulation_steps=ga,
        max_completion_length=MAX_LEN, accelerator=_Accelerator(), _entropy_bonus_enabled=False,
        aux_loss_enabled=False, _metrics={"train": defaultdict(list)},
        _get_per_token_logps_and_entropies=forward,
    )


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=g) * 2
    ids = torch.randint(0, V, (B, T), generator=g)
    lengths = torch.tensor([5, 3, 1, 4, 5, 2])
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T) right-padded
    with torch.no_grad():
        logp = torch.log_softmax(logits / TEMPERATURE, -1).gather(-1, ids[..., None]).squeeze(-1)
    # old / ref log-probs drift from the current policy so that both clip sides are exercised
    old = logp + 0.4 * torch.randn(B, T, generator=g)
    ref = logp + 0.5 * torch.randn(B, T, generator=g)
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.5])
    adv, _ = group_advantages(rewards, 3, "grpo")
    return logits, ids, mask, old, ref, adv


def _trl(loss_type, logits, ids, mask, old, ref, adv, num_items=None, ga=1, spg=1, level="token"):
    leaf = logits.clone().requires_grad_()
    eps_high = CISPO_CAP if loss_type == "cispo" else EPS_HIGH
    stub = _stand_in(leaf, ids, loss_type, ga, spg, level, eps_high)
    inputs = {
        "prompt_ids": torch.zeros(B, P, dtype=torch.long),
        "prompt_mask": torch.ones(B, P, dtype=torch.long),
        "completion_ids": ids, "completion_mask": mask, "advantages": adv,
        "old_per_token_logps": old, "ref_per_token_logps": ref,
        "num_items_in_batch": torch.tensor(float(mask.sum() if num_items is None else num_items)),
    }
    loss = trl_grpo.GRPOTrainer._compute_loss(stub, None, inputs)
    loss.backward()
    return loss.detach(), leaf.grad, stub._metrics["train"]


def _ours(aggregation, logits, ids, mask, old, ref, adv, num_tokens=None, algorithm="grpo",
          eps_low=EPS_LOW, eps_high=EPS_HIGH):
    leaf = logits.clone().requires_grad_()
    logp = token_logprobs(leaf, ids, TEMPERATURE)
    loss, m = POLICY_LOSSES[algorithm](logp=logp, old_logp=old, advantages=adv, mask=mask,
                                       eps_low=eps_low, eps_high=eps_high, beta=BETA, ref_logp=ref,
                                       aggregation=aggregation, max_len=MAX_LEN, num_tokens=num_tokens)
    loss.backward()
    return loss.detach(), leaf.grad, m


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo", "bnpo"])
def test_loss_grad_and_metrics_match_trl(loss_type):
    batch = _batch()
    t_loss, t_grad, t_m = _trl(loss_type, *batch)
    o_loss, o_grad, o_m = _ours(TRL_LOSS_TYPES[loss_type], *batch)
    torch.testing.assert_close(o_loss, t_loss, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(o_grad, t_grad, atol=1e-7, rtol=1e-5)
    assert t_grad.abs().sum() > 0
    assert o_m["kl"] == pytest.approx(t_m["kl"][0], abs=1e-6)
    assert o_m["clip_frac/low"] == pytest.approx(t_m["clip_ratio/low_mean"][0], abs=1e-7)
    assert o_m["clip_frac/high"] == pytest.approx(t_m["clip_ratio/high_mean"][0], abs=1e-7)
    # the batch must exercise both clip sides, or the clip logic is not really compared
    assert o_m["clip_frac/low"] > 0 and o_m["clip_frac/high"] > 0


def test_aggregations_are_distinguishable_on_this_batch():
    # parity above is meaningful only if TRL's loss types give different numbers here
    batch = _batch()
    values = [_trl(lt, *batch)[0].item() for lt in ("grpo", "dr_grpo", "dapo")]
    assert min(abs(a - b) for i, a in enumerate(values) for b in values[i + 1:]) > 1e-4


def test_dapo_over_an_accumulation_window_matches_trl():
    # TRL normalises dapo by the token count of the whole generation batch (num_items_in_batch),
    # rescaled by grad_accum / steps_per_generation; with 2 micro-batches per generation batch each
    # micro-batch is divided by the window's token count. Our num_tokens reproduces that.
    batch = _batch(seed=3)
    window_tokens = int(batch[2].sum()) + 17  # this micro-batch + another one of 17 tokens
    t_loss, t_grad, _ = _trl("dapo", *batch, num_items=window_tokens, ga=2, spg=2)
    o_loss, o_grad, _ = _ours("token_mean", *batch, num_tokens=window_tokens)
    torch.testing.assert_close(o_loss, t_loss, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(o_grad, t_grad, atol=1e-7, rtol=1e-5)


def test_gspo_sequence_level_matches_trl():
    batch = _batch(seed=5)
    t_loss, t_grad, _ = _trl("grpo", *batch, level="sequence")
    o_loss, o_grad, _ = _ours("seq_mean_token_mean", *batch, algorithm="gspo")
    torch.testing.assert_close(o_loss, t_loss, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(o_grad, t_grad, atol=1e-7, rtol=1e-5)


def test_cispo_matches_trl():
    # TRL clamps the weight at epsilon_high (no lower bound); ours at 1 + eps_high, floor 1 - 1 = 0
    batch = _batch(seed=7)
    t_loss, t_grad, _ = _trl("cispo", *batch)
    o_loss, o_grad, o_m = _ours("token_mean", *batch, algorithm="cispo", eps_low=1.0,
                                eps_high=CISPO_CAP - 1)
    torch.testing.assert_close(o_loss, t_loss, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(o_grad, t_grad, atol=1e-7, rtol=1e-5)
    assert o_m["clip_frac/high"] > 0  # the cap is active on this batch


def test_grpo_advantages_match_trl_formula():
    # TRL: (r - group nanmean) / (group nanstd (Bessel) + 1e-4)
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.2, 0.9, 0.9, 0.9])
    grouped = r.view(-1, 4)
    std = trl_utils.nanstd(grouped, dim=1).repeat_interleave(4)
    mean = torch.nanmean(grouped, dim=1).repeat_interleave(4)
    torch.testing.assert_close(group_advantages(r, 4, "grpo")[0], (r - mean) / (std + 1e-4))
