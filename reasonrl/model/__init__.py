"""The native DeepSeek-V3 model (MLA, DeepSeekMoE, MTP) and policy loading.

    model = create("tiny", seed=0)                  # or a ModelConfig, plus field overrides
    logits = model(ids)                             # (B, T) -> (B, T, V)
    model.save_pretrained(d); model = from_pretrained(d)
    policy = load_policy(path)                      # native DeepseekV3 or any transformers causal LM
    bundle = load_policy_bundle(path)               # + its tokenizer and prompt card (every command)
"""

from __future__ import annotations

import json
import os

import torch

from .config import PRESETS, ModelConfig, get_config
from .loading import PolicyBundle, load_policy_bundle, resolve_model_source
from .mla import LatentCache
from .transformer import TrainOutput, Transformer

__all__ = ["ModelConfig", "PRESETS", "Transformer", "TrainOutput", "LatentCache", "create",
           "from_pretrained", "load_policy", "get_config", "is_native_checkpoint", "PolicyBundle",
           "load_policy_bundle", "resolve_model_source"]


def create(preset_or_config: str | ModelConfig | dict = "tiny", *, seed: int | None = None,
           device: torch.device | str | None = None, dtype: torch.dtype | None = None,
           **overrides) -> Transformer:
    """Build a freshly initialised model. device="meta" builds shapes only (e.g. the full V3)."""
    cfg = get_config(preset_or_config, **overrides)
    if seed is not None:
        torch.manual_seed(seed)
    with torch.device(device or "cpu"):
        model = Transformer(cfg)
    if dtype is not None:
        model = model.to(dtype)  # the router bias and RoPE frequencies stay fp32
    return model


def from_pretrained(path, dtype: torch.dtype | None = torch.float32, device=None) -> Transformer:
    from .hf import from_pretrained as _load

    return _load(path, dtype=dtype, device=device)


def is_native_checkpoint(path) -> bool:
    cfg = os.path.join(str(path), "config.json")
    if not os.path.isfile(cfg):
        return False
    with open(cfg) as f:
        return json.load(f).get("model_type") == "deepseek_v3"


def load_policy(path, gguf_file: str | None = None):
    """DeepseekV3 checkpoints -> the native model; anything else -> a wrapped transformers model."""
    if gguf_file is None and is_native_checkpoint(path):
        return from_pretrained(path)
    from reasonrl.model.hf_policy import load_hf_policy

    return load_hf_policy(path, gguf_file=gguf_file)
