"""The sampler on transformers models: greedy exactness, log-probs, seeds, stops, layout."""

import pytest
import torch

from reasonrl.model.hf_policy import HFPolicy
from reasonrl.sampler import generate
from reasonrl.sampler.engine import SamplingParams, filter_logprobs

from tests.sampler.helpers import (
    CharTokenizer,
    greedy_reference,
    random_prompts,
    teacher_forced_logprobs,
    tiny_gpt2,
    tiny_llama,
    tiny_qwen2,
)


@pytest.fixture(scope="module")
def qwen():
    return tiny_qwen2()


@pytest.mark.parametrize("make", [tiny_qwen2, tiny_llama, tiny_gpt2], ids=["qwen2", "llama", "gpt2"])
def test_greedy_equals_argmax_of_full_forward(make):
    hf = make()
    prompts = random_prompts([3, 11, 7])
    out = generate(hf, prompts, n=2, max_new_tokens=12, temperature=0.0, ignore_eos=True)
    for row, completion in enumerate(out.completion_ids):
        assert completion == greedy_reference(hf, prompts[row // 2], 12)
        assert out.finish_reasons[row] == "length"


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.7, 20, 0.9), (1.3, 0, 0.5)])
def test_logprobs_equal_teacher_forced(qwen, temperature, top_k, top_p):
    prompts = random_prompts([4, 9])
    out = generate(qwen, prompts, n=3, max_new_tokens=10, temperature=temperature, top_k=top_k,
                   top_p=top_p, seed=3, ignore_eos=True)
    for row in range(len(out)):
        ref = teacher_forced_logprobs(qwen, out.prompt_ids[row], out.completion_ids[row], temperature)
        assert (torch.tensor(out.logprobs[row]) - ref).abs().max() <= 1e-4


def test_seeds_repeat_and_differ(qwen):
    prompts = random_prompts([5, 5])
    a = generate(qwen, prompts, n=4, max_new_tokens=16, seed=11, ignore_eos=True)
    b = generate(qwen, prompts, n=4, max_new_tokens=16, seed=11, ignore_eos=True)
    c = generate(qwen, prompts, n=4, max_new_tokens=16, seed=12, ignore_eos=True)
    assert a.completion_ids == b.completion_ids and a.logprobs == b.logprobs
    assert a.completion_ids != c.completion_ids
    # samples of one prompt differ from each other too
    assert len({tuple(r) for r in a.completion_ids[:4]}) == 4


def test_group_layout_is_prompt_major(qwen):
    prompts = random_prompts([2, 6, 4])
    out = generate(qwen, prompts, n=3, max_new_tokens=2, seed=0)
    assert out.group == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert out.prompt_ids == [prompts[i // 3] for i in range(9)]
    assert out.completion_lengths == [len(c) for c in out.completion_ids]


def test_stop_tokens_end_rows_independently(qwen):
    prompts = random_prompts([4] * 6, seed=5)
    free = generate(qwen, prompts, max_new_tokens=20, temperature=0.0, ignore_eos=True)
    # stop at the 4th greedy token of row 0: greedy rows are unchanged up to their own first stop
    stop = free.completion_ids[0][3]
    out = generate(qwen, prompts, max_new_tokens=20, temperature=0.0, stop_token_ids=[stop], ignore_eos=True)
    for full, got, reason in zip(free.completion_ids, out.completion_ids, out.finish_reasons):
        cut = full.index(stop) + 1 if stop in full else len(full)
        assert got == full[:cut]  # stop token included
        assert reason == ("stop" if stop in full else "length")
    assert out.finish_reasons[0] == "stop" and out.completion_lengths[0] <= 4


def test_eos_from_config_and_ignore_eos(qwen):
    prompts = random_prompts([4] * 4, seed=1)
    free = generate(qwen, prompts, max_new_tokens=20, temperature=0.0, ignore_eos=True)
    eos = free.completion_ids[1][2]
    qwen.config.eos_token_id = eos
    try:
        out = generate(qwen, prompts, max_new_tokens=20, temperature=0.0)
    finally:
        qwen.config.eos_token_id = 1
    assert out.completion_ids[1][-1] == eos and out.finish_reasons[1] == "stop"


def test_stop_strings_end_after_completing_token(qwen):
    tok = CharTokenizer()
    prompts = ["hello there", "abc"]
    free = generate(qwen, prompts, max_new_tokens=24, temperature=0.0, ignore_eos=True, tokenizer=tok)
    text0 = free.texts[0]
    needle = text0[5:7]  # a two-character string that appears in row 0's greedy text
    out = generate(qwen, prompts, max_new_tokens=24, temperature=0.0, ignore_eos=True, tokenizer=tok,
                   stop_strings=[needle])
    for full_ids, got_ids, text, reason in zip(free.completion_ids, out.completion_ids, out.texts,
                                               out.finish_reasons):
        full_text = tok.decode(full_ids)
        if needle in full_text:
            end = full_text.index(needle) + len(needle)  # one char per token
            assert got_ids == full_ids[:end] and reason == "stop" and text.endswith(needle)
        else:
            assert got_ids == full_ids and reason == "length"
    assert out.finish_reasons[0] == "stop"


def test_top_k_and_top_p_restrict_support(qwen):
    prompts = random_prompts([6], seed=2)
    out = generate(qwen, prompts, n=8, max_new_tokens=6, top_k=3, seed=0, ignore_eos=True)
    with torch.no_grad():
        for row in out.completion_ids:
            ids = torch.tensor([prompts[0] + row])
            logits = qwen(ids).logits[0, len(prompts[0]) - 1 : -1]
            top3 = logits.topk(3, -1).indices
            assert all(t in top3[i].tolist() for i, t in enumerate(row))
    greedy = generate(qwen, prompts, max_new_tokens=6, temperature=0.0, ignore_eos=True)
    tiny_p = generate(qwen, prompts, max_new_tokens=6, top_p=1e-6, seed=4, ignore_eos=True)
    assert tiny_p.completion_ids == greedy.completion_ids


def test_filter_keeps_nucleus():
    logp = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = filter_logprobs(logp, SamplingParams(top_p=0.8)).isfinite()[0].tolist()
    assert kept == [True, True, False, False]
    kept = filter_logprobs(logp, SamplingParams(top_p=0.81)).isfinite()[0].tolist()
    assert kept == [True, True, True, False]


def test_sampled_distribution_matches_softmax():
    hf = tiny_qwen2(vocab=8, layers=1)
    prompt = [3, 5]
    out = generate(hf, [prompt], n=4000, max_new_tokens=1, temperature=0.8, seed=0, ignore_eos=True)
    with torch.no_grad():
        p = torch.softmax(hf(torch.tensor([prompt])).logits[0, -1] / 0.8, -1)
    counts = torch.bincount(torch.tensor([c[0] for c in out.completion_ids]), minlength=8).double()
    from tests.sampler.helpers import chi2_pvalue

    assert chi2_pvalue(counts, p.double()) > 1e-3


def test_strings_need_tokenizer_and_bad_params_fail(qwen):
    with pytest.raises(ValueError, match="tokenizer"):
        generate(qwen, ["abc"], max_new_tokens=2)
    with pytest.raises(ValueError, match="sampling"):
        generate(qwen, [[2, 3]], max_new_tokens=2, top_p=0.0)


def test_zero_new_tokens_and_streaming(qwen):
    empty = generate(qwen, [[2, 3]], n=2, max_new_tokens=0)
    assert empty.completion_ids == [[], []]
    seen = []
    out = generate(HFPolicy(qwen), [[2, 3], [4]], max_new_tokens=5, temperature=0.0, ignore_eos=True,
                   on_tokens=lambda rows, toks: seen.extend(zip(rows, toks)))
    assert [t for r, t in seen if r == 1] == out.completion_ids[1]


def test_chunked_prefill_gives_the_same_tokens(qwen, monkeypatch):
    import reasonrl.sampler.engine as engine

    prompts = random_prompts([40, 7, 23])
    whole = generate(qwen, prompts, n=2, max_new_tokens=6, temperature=0.0, ignore_eos=True)
    monkeypatch.setattr(engine, "PREFILL_LOGIT_ELEMENTS", 1)  # 16-token chunks: 3 for the longest prompt
    chunked = generate(qwen, prompts, n=2, max_new_tokens=6, temperature=0.0, ignore_eos=True)
    assert chunked.completion_ids == whole.completion_ids
    for a, b in zip(chunked.logprobs, whole.logprobs):
        assert max(abs(x - y) for x, y in zip(a, b)) <= 1e-4
