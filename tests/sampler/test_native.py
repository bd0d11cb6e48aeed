"""The sampler on the native DeepSeek-V3 model: plain and MTP self-speculative decoding."""

import itertools

import pytest
import torch

from reasonrl.model import create
from reasonrl.sampler import generate

from tests.sampler.helpers import (
    chi2_pvalue,
    greedy_reference,
    random_prompts,
    teacher_forced_logprobs,
    train_native,
)


@pytest.fixture(scope="module")
def native():
    return create("tiny", seed=0).eval()


def test_native_greedy_equals_argmax_of_full_forward(native):
    prompts = random_prompts([3, 11, 7])
    out = generate(native, prompts, n=2, max_new_tokens=12, temperature=0.0, ignore_eos=True)
    for row, completion in enumerate(out.completion_ids):
        assert completion == greedy_reference(native, prompts[row // 2], 12)


def test_native_logprobs_equal_teacher_forced(native):
    prompts = random_prompts([4, 9])
    out = generate(native, prompts, n=3, max_new_tokens=10, temperature=0.8, top_p=0.9, seed=1, ignore_eos=True)
    for row in range(len(out)):
        ref = teacher_forced_logprobs(native, out.prompt_ids[row], out.completion_ids[row], 0.8)
        assert (torch.tensor(out.logprobs[row]) - ref).abs().max() <= 1e-4


def test_speculative_greedy_is_token_identical():
    # two training steps on counting text: the MTP draft is right most of the time, not always,
    # so both the accept and the reject branch run
    model = train_native(create("tiny", seed=3, vocab_size=16), steps=2, vocab=16, batch=8, length=16)
    prompts = random_prompts([2, 9, 5, 4], seed=1, vocab=16)
    plain = generate(model, prompts, n=2, max_new_tokens=24, temperature=0.0, ignore_eos=True)
    spec = generate(model, prompts, n=2, max_new_tokens=24, temperature=0.0, ignore_eos=True, speculative=True)
    assert spec.completion_ids == plain.completion_ids
    assert spec.finish_reasons == plain.finish_reasons
    assert 0.0 < spec.stats["acceptance_rate"] < 1.0
    for a, b in zip(spec.logprobs, plain.logprobs):
        assert max(abs(x - y) for x, y in zip(a, b)) <= 1e-4


def test_speculative_greedy_with_stops_matches_plain():
    model = train_native(create("tiny", seed=3, vocab_size=16), steps=2, vocab=16, batch=8, length=16)
    prompts = random_prompts([3] * 6, seed=2, vocab=16)
    kw = dict(n=1, max_new_tokens=20, temperature=0.0, stop_token_ids=[5], ignore_eos=True)
    plain = generate(model, prompts, **kw)
    spec = generate(model, prompts, speculative=True, **kw)
    assert spec.completion_ids == plain.completion_ids and spec.finish_reasons == plain.finish_reasons
    assert "stop" in spec.finish_reasons


def _exact_joint(model, prompt, vocab, steps, temperature):
    """Exact probability of every continuation of length `steps` (tempered), by full forwards."""
    probs = {}
    with torch.no_grad():
        for seq in itertools.product(range(vocab), repeat=steps):
            lp = teacher_forced_logprobs(model, prompt, list(seq), temperature)
            probs[seq] = float(lp.sum().exp())
    return probs


def test_speculative_sampling_matches_target_distribution():
    vocab, steps, temperature = 4, 3, 1.5
    model = create("tiny", seed=5, vocab_size=vocab).eval()
    prompt = [1, 2, 3]
    out = generate(model, [prompt], n=6000, max_new_tokens=steps, temperature=temperature, seed=7,
                   ignore_eos=True, speculative=True)
    rate = out.stats["acceptance_rate"]
    assert 0.1 < rate < 0.95  # both branches of the acceptance rule are exercised
    exact = _exact_joint(model, prompt, vocab, steps, temperature)
    cells = sorted(exact)
    index = {c: i for i, c in enumerate(cells)}
    counts = torch.zeros(len(cells), dtype=torch.float64)
    for c in out.completion_ids:
        counts[index[tuple(c)]] += 1
    assert chi2_pvalue(counts, torch.tensor([exact[c] for c in cells], dtype=torch.float64)) > 1e-3


def test_speculative_needs_mtp(native):
    no_mtp = create("tiny", seed=0, num_nextn_predict_layers=0).eval()
    with pytest.raises(ValueError, match="MTP"):
        generate(no_mtp, [[2, 3]], max_new_tokens=4, speculative=True)
