"""RoPE / YaRN numerics, config round trip, and the full V3 parameter counts (meta device)."""

import math

import pytest
import torch

from reasonrl.model import ModelConfig, create, get_config
from reasonrl.model.config import PRESETS, from_hf_dict, to_hf_dict
from reasonrl.model.layers import Rotary, apply_rope, rope_params


def test_rope_rotates_adjacent_pairs():
    rot = Rotary(4, theta=100.0, rope_scaling=None)
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])  # (B, T, d_r)
    p = 3
    cos, sin = rot.cos_sin(torch.tensor([[p]]), x.dtype)
    out = apply_rope(x, cos, sin)[0, 0]
    f0, f1 = p * 1.0, p * 100.0 ** -0.5  # inv_freq = theta^(-2i/d)
    # pair (x0, x1) rotates by f0, pair (x2, x3) by f1; output is [evens | odds]
    exp = [1 * math.cos(f0) - 2 * math.sin(f0), 3 * math.cos(f1) - 4 * math.sin(f1),
           2 * math.cos(f0) + 1 * math.sin(f0), 4 * math.cos(f1) + 3 * math.sin(f1)]
    assert torch.allclose(out, torch.tensor(exp), atol=1e-6)


def test_rope_scores_depend_only_on_relative_position():
    rot = Rotary(8, 10000.0, None)
    q, k = torch.randn(1, 1, 8), torch.randn(1, 1, 8)

    def score(pq, pk):
        cq, sq = rot.cos_sin(torch.tensor([[pq]]), q.dtype)
        ck, sk = rot.cos_sin(torch.tensor([[pk]]), k.dtype)
        return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum()

    assert torch.allclose(score(7, 3), score(104, 100), atol=1e-4)


def test_yarn_matches_transformers_and_v3_mscale():
    tr = pytest.importorskip("transformers")
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    cfg = get_config("deepseek-v3")
    hf_cfg = tr.DeepseekV3Config(rope_scaling=dict(cfg.rope_scaling), rope_theta=cfg.rope_theta,
                                 max_position_embeddings=cfg.max_position_embeddings)
    hf_inv, hf_att = ROPE_INIT_FUNCTIONS["yarn"](hf_cfg)
    inv, att, mult = rope_params(cfg.qk_rope_head_dim, cfg.rope_theta, cfg.rope_scaling)
    assert torch.allclose(inv, hf_inv, rtol=1e-6) and att == pytest.approx(hf_att)
    # V3: mscale == mscale_all_dim == 1 -> cos/sin unscaled, softmax scale * (0.1 ln 40 + 1)^2
    assert att == 1.0 and mult == pytest.approx((0.1 * math.log(40) + 1) ** 2)
    assert inv[0] == 1.0 and inv[-1] == pytest.approx(1 / (40 * 10000 ** (62 / 64)), rel=1e-5)


def test_config_json_round_trip_and_training_knobs():
    cfg = get_config("tiny", q_lora_rank=0, aux_loss_alpha=1e-3, rope_scaling={"type": "yarn", "factor": 2.0,
                     "original_max_position_embeddings": 64})
    assert cfg.q_lora_rank is None
    d = to_hf_dict(cfg)
    assert d["reasonrl"] == {"mtp_loss_weight": 0.3, "aux_loss_alpha": 1e-3, "bias_update_gamma": 0.001}
    assert "aux_loss_alpha" not in d and d["rope_parameters"]["rope_type"] == "yarn"
    assert from_hf_dict(d) == cfg
    assert all(f.metadata.get("help") for f in ModelConfig.__dataclass_fields__.values())
    with pytest.raises(ValueError, match="preset"):
        get_config("huge")


def test_tiny_and_small_preset_sizes():
    tiny = create("tiny", seed=0)
    assert 0.8e6 < tiny.num_parameters() < 1.2e6
    c = tiny.config
    assert c.q_lora_rank and c.n_routed_experts == 8 and c.num_experts_per_tok == 2
    assert c.n_group == 2 and c.topk_group == 1 and c.num_nextn_predict_layers == 1
    assert not c.is_moe_layer(0) and c.is_moe_layer(1)
    small = create("small", device="meta")
    assert 20e6 < small.num_parameters() < 50e6


def _v3_by_hand() -> tuple[int, int]:
    d, V, H = 7168, 129280, 128
    attn = (d * 1536 + 1536 + 1536 * H * 192 + d * 576 + 512 + 512 * H * 256 + H * 128 * d)
    dense = 3 * d * 18432
    expert = 3 * d * 2048
    moe = 257 * expert + 256 * d  # 256 routed + 1 shared + router
    main = 2 * V * d + d + 3 * (attn + dense + 2 * d) + 58 * (attn + moe + 2 * d)
    mtp = 2 * d + d * 2 * d + d + attn + moe + 2 * d  # enorm, hnorm, eh_proj, shared_head.norm, block
    return main, mtp


def test_deepseek_v3_parameter_counts_on_meta():
    m = create("deepseek-v3", device="meta")
    main, mtp = _v3_by_hand()
    assert m.num_parameters(mtp=False) == main == 671_026_404_352  # "671B"
    assert m.num_parameters() == main + mtp
    # checkpoints also store the MTP layer's copies of embed_tokens and the head: "685B"
    stored = m.num_parameters() + 2 * 129280 * 7168
    assert stored == pytest.approx(685e9, rel=0.005)
    active = m.num_parameters(mtp=False, activated=True)  # 8 of 256 routed experts per token
    assert active == pytest.approx(37e9, rel=0.03)  # "37B activated" (incl. embeddings: 37.55B)
    assert PRESETS["deepseek-v3"]["kv_lora_rank"] + PRESETS["deepseek-v3"]["qk_rope_head_dim"] == 576


def test_config_written_by_transformers_5_reads_rope_parameters():
    d = {"model_type": "deepseek_v3", "hidden_size": 64, "num_hidden_layers": 2,
         "rope_parameters": {"rope_type": "yarn", "rope_theta": 50000.0, "factor": 8.0,
                             "original_max_position_embeddings": 128}}
    cfg = from_hf_dict(d)
    assert cfg.rope_theta == 50000.0 and cfg.rope_scaling["factor"] == 8.0
    # absent keys take transformers' defaults (V3 dims), not the tiny preset's
    assert cfg.n_routed_experts == 256 and cfg.first_k_dense_replace == 3 and cfg.initializer_range == 0.02
    assert cfg.aux_loss_alpha == 0.0
