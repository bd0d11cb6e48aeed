"""ModelConfig: transformers' DeepseekV3Config field names, presets, and config.json conversion."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields


def _f(default, help: str):
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class ModelConfig:
    vocab_size: int = _f(512, "Vocabulary size (rows of embed_tokens and lm_head).")
    hidden_size: int = _f(96, "Model width d.")
    intermediate_size: int = _f(256, "Hidden width of the dense SwiGLU FFN (first_k_dense_replace layers).")
    moe_intermediate_size: int = _f(64, "Hidden width of each routed / shared expert.")
    num_hidden_layers: int = _f(4, "Number of decoder layers (MTP modules not included).")
    num_attention_heads: int = _f(4, "Attention heads n_h.")
    num_key_value_heads: int = _f(4, "Kept for transformers compatibility; MLA uses num_attention_heads.")
    q_lora_rank: int | None = _f(48, "Query compression rank d_q; None or 0 = plain q_proj.")
    kv_lora_rank: int = _f(32, "Latent KV rank d_c: what the decode cache stores per token per layer.")
    qk_nope_head_dim: int = _f(16, "Per-head query/key dims without position encoding (d_h).")
    qk_rope_head_dim: int = _f(8, "Dims of the decoupled rotary query/key (d_r); one rope key shared by all heads.")
    v_head_dim: int = _f(16, "Per-head value dims d_v.")
    n_routed_experts: int = _f(8, "Routed experts per MoE layer (0 = every layer dense).")
    n_shared_experts: int = _f(1, "Always-on shared experts per MoE layer (ungated, fused into one SwiGLU).")
    num_experts_per_tok: int = _f(2, "Routed experts chosen per token (K).")
    n_group: int = _f(2, "Expert groups for group-limited routing.")
    topk_group: int = _f(1, "Groups kept per token; top-K experts are chosen inside them.")
    norm_topk_prob: bool = _f(True, "Normalise the chosen affinities to sum 1 before routed_scaling_factor.")
    routed_scaling_factor: float = _f(2.5, "Multiplier on the routed gate values (V3: 2.5).")
    first_k_dense_replace: int = _f(1, "The first k decoder layers use the dense FFN instead of MoE.")
    num_nextn_predict_layers: int = _f(1, "Number D of multi-token-prediction modules (0 = none).")
    rms_norm_eps: float = _f(1e-6, "RMSNorm epsilon.")
    rope_theta: float = _f(10000.0, "RoPE base.")
    rope_scaling: dict | None = _f(None, "YaRN dict (type/rope_type 'yarn', factor, original_max_position_embeddings, beta_fast, beta_slow, mscale, mscale_all_dim) or None.")
    max_position_embeddings: int = _f(2048, "Longest sequence the model is meant for (informative; RoPE is computed on the fly).")
    tie_word_embeddings: bool = _f(False, "Share lm_head with embed_tokens.")
    bos_token_id: int | None = _f(0, "Beginning-of-sequence token id.")
    eos_token_id: int | list[int] | None = _f(1, "End-of-sequence token id (or ids).")
    pad_token_id: int | None = _f(None, "Padding token id (batches are right-padded; pads never influence real tokens).")
    initializer_range: float = _f(0.02, "Std of the normal init of linear and embedding weights (V3 pretraining: 0.006; the tiny and small presets use 0.02, the transformers default).")
    # reasonrl-only training knobs: stored under "reasonrl" in config.json, which transformers ignores
    mtp_loss_weight: float = _f(0.3, "lambda: the MTP loss is lambda / D * sum_k CE_k (V3: 0.3, later 0.1).")
    aux_loss_alpha: float = _f(0.0, "alpha of the sequence-wise balance loss (V3: 1e-4; 0 disables it).")
    bias_update_gamma: float = _f(0.001, "gamma of aux-loss-free balancing: b += gamma * sign(mean_load - load).")

    def __post_init__(self):
        if not self.q_lora_rank:
            self.q_lora_rank = None
        problem = self._shape_problem()
        if problem:
            raise ValueError(f"invalid model config: {problem}")

    def _shape_problem(self) -> str | None:
        """The first field combination that cannot make a model, phrased for the user."""
        positive = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                    "kv_lora_rank", "qk_nope_head_dim", "v_head_dim")
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                return f"{name} must be a positive integer, got {getattr(self, name)!r}"
        for name in ("qk_rope_head_dim", "n_routed_experts", "n_shared_experts", "first_k_dense_replace",
                     "num_nextn_predict_layers"):
            if getattr(self, name) < 0:
                return f"{name} must be >= 0, got {getattr(self, name)!r}"
        if self.qk_rope_head_dim % 2:
            return f"qk_rope_head_dim must be even (RoPE rotates pairs), got {self.qk_rope_head_dim}"
        if self.n_routed_experts:
            if self.moe_intermediate_size < 1:
                return f"moe_intermediate_size must be >= 1 with routed experts, got {self.moe_intermediate_size}"
            if self.n_group < 1 or self.n_routed_experts % self.n_group:
                return f"n_routed_experts ({self.n_routed_experts}) must be divisible by n_group ({self.n_group})"
            if not 1 <= self.topk_group <= self.n_group:
                return f"topk_group must be in [1, n_group={self.n_group}], got {self.topk_group}"
            per_group = self.n_routed_experts // self.n_group
            if not 1 <= self.num_experts_per_tok <= self.topk_group * per_group:
                return (f"num_experts_per_tok must be in [1, {self.topk_group * per_group}] (the experts of the "
                        f"{self.topk_group} kept groups), got {self.num_experts_per_tok}")
        return None

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    def is_moe_layer(self, idx: int) -> bool:
        """idx counts MTP blocks too (they sit at num_hidden_layers + k, MoE like V3's layer 61)."""
        return self.n_routed_experts > 0 and idx >= self.first_k_dense_replace

    def replace(self, **kw) -> "ModelConfig":
        return dataclasses.replace(self, **kw)


TRAINING_KEYS = ("mtp_loss_weight", "aux_loss_alpha", "bias_update_gamma")

PRESETS: dict[str, dict] = {
    "tiny": {},  # the dataclass defaults: ~1M parameters, MLA + MoE + MTP all on
    "small": dict(
        vocab_size=4096, hidden_size=384, intermediate_size=1024, moe_intermediate_size=192,
        num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=6, q_lora_rank=192,
        kv_lora_rank=128, qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32,
        n_routed_experts=16, num_experts_per_tok=2, n_group=4, topk_group=2,
        max_position_embeddings=4096,
    ),
    "deepseek-v3": dict(
        vocab_size=129280, hidden_size=7168, intermediate_size=18432, moe_intermediate_size=2048,
        num_hidden_layers=61, num_attention_heads=128, num_key_value_heads=128, q_lora_rank=1536,
        kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128,
        n_routed_experts=256, n_shared_experts=1, num_experts_per_tok=8, n_group=8, topk_group=4,
        first_k_dense_replace=3, num_nextn_predict_layers=1, max_position_embeddings=163840,
        rope_scaling={"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                      "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
        initializer_range=0.006, aux_loss_alpha=1e-4,
    ),
}


# where transformers' DeepseekV3Config defaults differ from the deepseek-v3 preset
HF_ONLY_DEFAULTS = dict(first_k_dense_replace=3, max_position_embeddings=4096, rope_scaling=None,
                        initializer_range=0.02, tie_word_embeddings=False, pad_token_id=None)


def get_config(preset_or_config: str | ModelConfig | dict = "tiny", **overrides) -> ModelConfig:
    if isinstance(preset_or_config, ModelConfig):
        return preset_or_config.replace(**overrides)
    if isinstance(preset_or_config, dict):
        return ModelConfig(**{**preset_or_config, **overrides})
    if preset_or_config not in PRESETS:
        raise ValueError(f"unknown model preset {preset_or_config!r}; choose one of {sorted(PRESETS)}")
    return ModelConfig(**{**PRESETS[preset_or_config], **overrides})


def to_hf_dict(cfg: ModelConfig) -> dict:
    """config.json for transformers' DeepseekV3ForCausalLM (legacy rope keys + rope_parameters)."""
    d = {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name not in TRAINING_KEYS}
    rope = dict(cfg.rope_scaling) if cfg.rope_scaling else {}
    if rope:
        rope.setdefault("rope_type", rope.get("type", "yarn"))
    rope_parameters = {**rope, "rope_theta": cfg.rope_theta, "rope_type": rope.get("rope_type", "default")}
    d.update(
        model_type="deepseek_v3", architectures=["DeepseekV3ForCausalLM"], hidden_act="silu",
        topk_method="noaux_tc", scoring_func="sigmoid", rope_interleave=True, attention_bias=False,
        attention_dropout=0.0, rope_parameters=rope_parameters,
        reasonrl={k: getattr(cfg, k) for k in TRAINING_KEYS},
    )
    return d


def from_hf_dict(d: dict) -> ModelConfig:
    """Inverse of to_hf_dict; also reads configs written by transformers (rope_parameters only)."""
    names = {f.name for f in fields(ModelConfig)}
    # keys a config.json leaves out take transformers' DeepseekV3Config defaults, not our tiny ones
    kw = {**PRESETS["deepseek-v3"], **HF_ONLY_DEFAULTS}
    kw.update({k: v for k, v in d.items() if k in names})
    kw = {k: v for k, v in kw.items() if k not in TRAINING_KEYS}
    rp = d.get("rope_parameters")
    if isinstance(rp, dict):
        if d.get("rope_theta") is None:
            kw["rope_theta"] = rp.get("rope_theta", 10000.0)
        kind = rp.get("rope_type", rp.get("type", "default"))
        if kind != "default" and not kw.get("rope_scaling"):
            kw["rope_scaling"] = {k: v for k, v in rp.items() if k != "rope_theta"}
    if kw.get("rope_theta") is None:
        kw["rope_theta"] = 10000.0
    kw.update({k: v for k, v in (d.get("reasonrl") or {}).items() if k in TRAINING_KEYS})
    for k in ("n_group", "topk_group"):
        kw[k] = kw[k] or 1
    return ModelConfig(**kw)
