"""Both directions against the installed transformers DeepseekV3ForCausalLM."""

import json

import pytest
import torch

from reasonrl.model import create, from_pretrained, load_policy

from .conftest import VARIANTS, randomize_bias

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()


@pytest.mark.parametrize("name", sorted(VARIANTS))
@torch.no_grad()
def test_our_checkpoint_loads_in_transformers_with_same_logits(name, tmp_path):
    ours = create("tiny", seed=0, **VARIANTS[name]).eval()
    randomize_bias(ours)
    ours.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "deepseek_v3" and cfg["architectures"] == ["DeepseekV3ForCausalLM"]
    hf, info = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, output_loading_info=True,
                                                                 dtype=torch.float32)
    assert not info["missing_keys"] and not info["mismatched_keys"]
    # only the MTP layer is extra (transformers has no MTP module)
    L = ours.config.num_hidden_layers
    assert info["unexpected_keys"] and all(k.startswith(f"model.layers.{L}.") for k in info["unexpected_keys"])
    ids = torch.randint(0, ours.config.vocab_size, (2, 24))
    a, b = ours(ids), hf(ids).logits
    assert (a - b).abs().max() <= 1e-4
    # the comparison can fail: break one expert and the logits move
    ours.layers[-1].mlp.experts.down_proj[:] *= 2
    assert (ours(ids) - b).abs().max() > 1e-3


def _hf_tiny(**kw):
    c = transformers.DeepseekV3Config(
        vocab_size=128, hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
        num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=2, q_lora_rank=16,
        kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8, n_routed_experts=8,
        n_shared_experts=1, num_experts_per_tok=2, n_group=4, topk_group=2, first_k_dense_replace=1,
        max_position_embeddings=64, initializer_range=0.1, **kw)
    torch.manual_seed(0)
    m = transformers.DeepseekV3ForCausalLM(c).eval()
    with torch.no_grad():
        for n, b in m.named_buffers():
            if "e_score_correction_bias" in n:
                b.normal_(0, 0.05)
    return m


@pytest.mark.parametrize("interleave", [True, False])
@torch.no_grad()
def test_transformers_checkpoint_loads_into_ours(interleave, tmp_path):
    from safetensors.torch import save_file

    hf = _hf_tiny(rope_interleave=interleave)
    hf.save_pretrained(tmp_path / "per_expert")  # transformers writes per-expert keys
    fused = tmp_path / "fused"  # its in-memory layout: experts.gate_up_proj / experts.down_proj
    fused.mkdir()
    sd = hf.state_dict()
    assert "model.layers.1.mlp.experts.gate_up_proj" in sd
    save_file({k: v.contiguous() for k, v in sd.items()}, fused / "model.safetensors")
    (fused / "config.json").write_text((tmp_path / "per_expert" / "config.json").read_text())
    ids = torch.randint(0, 128, (2, 20))
    ref = hf(ids).logits
    for d in (tmp_path / "per_expert", fused):
        with pytest.warns(UserWarning, match="MTP"):  # transformers saves no MTP weights
            ours = load_policy(d)
        assert ours.is_native and ours.config.n_group == 4
        assert (ours(ids) - ref).abs().max() <= 1e-4
    if not interleave:  # the rope-row permutation is what makes it match
        from reasonrl.model.hf import _read_tensors, from_hf_state_dict

        raw = from_hf_state_dict(_read_tensors(str(fused)), ours.config)
        ours.load_state_dict(raw, strict=False)
        assert (ours(ids) - ref).abs().max() > 1e-2


def test_saved_keys_follow_the_v3_layout(tmp_path):
    from safetensors import safe_open

    m = create("tiny", seed=0)
    m.save_pretrained(tmp_path)
    keys = set(safe_open(str(tmp_path / "model.safetensors"), "pt").keys())
    L, E = m.config.num_hidden_layers, m.config.n_routed_experts
    assert "model.layers.0.mlp.gate_proj.weight" in keys  # dense first layer
    assert {f"model.layers.1.mlp.experts.{e}.{p}.weight" for e in range(E)
            for p in ("gate_proj", "up_proj", "down_proj")} <= keys
    assert not any("gate_up_proj" in k for k in keys)
    for k in ("enorm", "hnorm", "eh_proj", "shared_head.norm", "shared_head.head", "embed_tokens",
              "self_attn.kv_a_proj_with_mqa", "mlp.gate.e_score_correction_bias", "input_layernorm"):
        assert any(key.startswith(f"model.layers.{L}.{k}") for key in keys), k
    assert {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
            "model.layers.0.self_attn.q_a_layernorm.weight"} <= keys
    assert not any("rotary" in k or "inv_freq" in k for k in keys)


@torch.no_grad()
def test_tied_embeddings_round_trip(tmp_path):
    m = create("tiny", seed=0, tie_word_embeddings=True, num_nextn_predict_layers=0).eval()
    assert m.lm_head.weight is m.embed_tokens.weight
    m.save_pretrained(tmp_path)
    back = from_pretrained(tmp_path)
    assert back.lm_head.weight is back.embed_tokens.weight
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    ids = torch.randint(0, 512, (1, 9))
    assert (back(ids) - m(ids)).abs().max() == 0
    assert (hf(ids).logits - m(ids)).abs().max() <= 1e-4


def test_load_policy_sends_other_models_to_the_transformers_wrapper(tmp_path, monkeypatch):
    import sys
    import types

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    calls = []
    fake = types.ModuleType("reasonrl.model.hf_policy")
    fake.load_hf_policy = lambda path, gguf_file=None: calls.append((path, gguf_file)) or "wrapped"
    monkeypatch.setitem(sys.modules, "reasonrl.model.hf_policy", fake)
    assert load_policy(tmp_path, gguf_file="m.gguf") == "wrapped"
    assert load_policy(tmp_path) == "wrapped"
    assert calls == [(tmp_path, "m.gguf"), (tmp_path, None)]


@pytest.mark.parametrize("fmt", ["r1_zero", "r1_short", "plain"])
@torch.no_grad()
def test_plain_transformers_generates_what_reasonrl_does_from_a_carded_model(fmt, tmp_path):
    """A saved native model with its card: transformers' own chat template + greedy generate (its
    generation_config.json) give the completion tokens reasonrl's sampler gives from build_prompt."""
    from reasonrl.sampler import generate
    from reasonrl.tasks.prompts import build_prompt, write_model_card
    from tests.sampler.helpers import tiny_native_dir

    tok = tiny_native_dir(tmp_path)
    card = write_model_card(tmp_path, fmt, tok, prefill="<think>")
    question = "What is 12+30?"
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path)
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    ids = hf_tok.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True)["input_ids"]
    theirs = hf.generate(ids, max_new_tokens=12, do_sample=False)[0, ids.shape[1]:].tolist()
    prompt = build_prompt({"prompt": question}, tok, fmt, "<think>")
    ours = generate(load_policy(tmp_path), [prompt], max_new_tokens=12, temperature=0.0, tokenizer=tok,
                    stop_strings=list(card.stop_strings))
    assert ids[0].tolist() == ours.prompt_ids[0] and theirs == ours.completion_ids[0] and len(theirs) > 0
