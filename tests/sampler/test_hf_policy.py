"""HFPolicy: the cache protocol of docs/design.md on transformers models."""

import pytest
import torch

from reasonrl.model.hf_policy import HFPolicy, KVCache, TokenCache, smollm2_path

from tests.sampler.helpers import VOCAB, random_prompts, tiny_gpt2, tiny_llama, tiny_qwen2

MODELS = {"qwen2": tiny_qwen2, "llama3-rope": tiny_llama, "gpt2-generic": tiny_gpt2}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_cached_forward_matches_full_forward(name):
    hf = MODELS[name]()
    policy = HFPolicy(hf)
    ids = torch.tensor(random_prompts([12, 12, 12]))
    lengths = [5, 9, 12]
    cache = policy.make_cache(3, 16)
    assert isinstance(cache, TokenCache if name == "gpt2-generic" else KVCache)
    with torch.no_grad():
        full = hf(ids).logits
        padded = ids.clone()
        for b, n in enumerate(lengths):
            padded[b, n:] = 0  # right padding that later decode steps overwrite
        pre = policy(padded[:, :12], cache=cache)
        for b, n in enumerate(lengths):
            torch.testing.assert_close(pre[b, :n], full[b, :n], atol=1e-4, rtol=0)
        pos = torch.tensor(lengths)
        while int(pos.min()) < 12:  # every row decodes at its own position
            step = pos.clamp(max=11)
            out = policy(ids.gather(1, step[:, None]), positions=step[:, None], cache=cache)
            for b in range(3):
                if pos[b] < 12:
                    torch.testing.assert_close(out[b, 0], full[b, pos[b]], atol=1e-4, rtol=0)
            pos = pos + 1


def test_keep_reorders_and_repeats_rows():
    policy = HFPolicy(tiny_qwen2())
    ids = torch.tensor(random_prompts([6, 6, 6]))
    cache = policy.make_cache(3, 8)
    with torch.no_grad():
        policy(ids, cache=cache)
        cache.keep(torch.tensor([2, 0, 0]))
        assert cache.batch_size == 3 and cache.max_len == 8
        nxt = torch.tensor([[7], [8], [9]])
        out = policy(nxt, positions=torch.full((3, 1), 6), cache=cache)
        ref = policy(torch.cat([ids[[2, 0, 0]], nxt], 1))[:, -1]
    torch.testing.assert_close(out[:, 0], ref, atol=1e-4, rtol=0)


def test_forward_train_and_flags():
    policy = HFPolicy(tiny_qwen2())
    out = policy.forward_train(torch.tensor(random_prompts([5, 5])))
    assert out.logits.shape == (2, 5, policy.config.vocab_size)
    assert out.mtp_logits == [] and out.moe_load is None and float(out.aux_loss) == 0.0
    assert out.logits.requires_grad and policy.is_native is False


def test_save_and_load_roundtrip(tmp_path):
    from reasonrl.model.hf_policy import load_hf_policy

    policy = HFPolicy(tiny_qwen2())
    policy.save_pretrained(tmp_path)
    loaded = load_hf_policy(tmp_path)
    ids = torch.tensor(random_prompts([7]))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids), policy(ids))
    with pytest.raises(FileNotFoundError, match="model not found"):
        load_hf_policy(tmp_path / "missing")


@pytest.mark.slow
def test_smollm2_gguf_cache_and_greedy_generation(tmp_path):
    from reasonrl.model.hf_policy import load_hf_policy, load_tokenizer
    from reasonrl.sampler import generate

    from tests.sampler.helpers import greedy_reference

    try:
        path, gguf = smollm2_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    policy = load_hf_policy(path, gguf_file=gguf)
    tok = load_tokenizer(path, gguf_file=gguf)
    prompts = ["The capital of France is", "1, 2, 3,"]
    ids = torch.tensor([tok.encode(prompts[0])])
    cache = policy.make_cache(1, ids.shape[1] + 1)
    assert isinstance(cache, KVCache)  # SmolLM2 is a llama: the fast path
    with torch.no_grad():
        torch.testing.assert_close(policy(ids, cache=cache), policy(ids), atol=1e-3, rtol=0)
    out = generate(policy, prompts, max_new_tokens=6, temperature=0.0, tokenizer=tok, ignore_eos=True)
    for row, prompt in enumerate(prompts):
        assert out.completion_ids[row] == greedy_reference(policy, tok.encode(prompt, add_special_tokens=False), 6)
    assert all(isinstance(t, str) and t for t in out.texts)
    # a policy trained from the GGUF saves as an ordinary (de-quantized) transformers checkpoint
    policy.save_pretrained(tmp_path / "saved")
    again = load_hf_policy(tmp_path / "saved")
    with torch.no_grad():
        torch.testing.assert_close(again(ids), policy(ids), atol=1e-5, rtol=0)


def test_fused_weights_follow_optimizer_steps():
    policy = HFPolicy(tiny_qwen2())
    ids = torch.tensor(random_prompts([6]))
    with torch.no_grad():
        before = policy(ids, cache=policy.make_cache(1, 6))
    opt = torch.optim.SGD(policy.parameters(), lr=0.5)
    policy.forward_train(ids).logits.square().mean().backward()
    opt.step()
    with torch.no_grad():
        after = policy(ids, cache=policy.make_cache(1, 6))
        assert (after - before).abs().max() > 1e-3
        torch.testing.assert_close(after, policy(ids), atol=1e-4, rtol=0)


def test_sliding_window_shorter_than_cache_uses_generic_path():
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(0)
    cfg = MistralConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                        intermediate_size=128, vocab_size=VOCAB, sliding_window=4)
    policy = HFPolicy(MistralForCausalLM(cfg).eval())
    assert isinstance(policy.make_cache(1, 16), TokenCache)
    assert isinstance(policy.make_cache(1, 4), KVCache)
    ids = torch.tensor(random_prompts([10]))
    cache = policy.make_cache(1, 10)
    with torch.no_grad():
        torch.testing.assert_close(policy(ids, cache=cache), policy(ids), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_hidden_states_give_the_forward_logits(name):
    # Llama/Qwen keep the decoder as .model, GPT-2 as .transformer: hidden_states finds either
    policy = HFPolicy(MODELS[name]())
    ids = torch.tensor(random_prompts([7, 7]))
    with torch.no_grad():
        h = policy.hidden_states(ids)
        assert h.shape == (2, 7, policy.config.hidden_size)
        torch.testing.assert_close(policy.hf.lm_head(h), policy(ids), atol=1e-5, rtol=0)
        pos = torch.arange(2, 9).expand(2, -1)
        torch.testing.assert_close(policy.hf.lm_head(policy.hidden_states(ids, pos)),
                                   policy(ids, positions=pos), atol=1e-5, rtol=0)
