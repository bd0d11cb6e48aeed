"""Save / load the transformers DeepseekV3 checkpoint format (config.json + safetensors).

Saved: per-expert keys (`mlp.experts.{e}.gate_proj.weight` ...), MTP module k at layer index
num_hidden_layers + k with V3's names (enorm, hnorm, eh_proj, shared_head.norm, shared_head.head,
embed_tokens + a full decoder layer). Loaded: that, or transformers 5's fused in-memory layout
(`mlp.experts.gate_up_proj` (E, 2I, d), `mlp.experts.down_proj` (E, d, I)), single-file or sharded;
`rope_interleave: false` checkpoints get their rope rows permuted into the adjacent-pair layout.
"""

from __future__ import annotations

import json
import os
import re
import warnings

import torch

from .config import from_hf_dict, to_hf_dict

_EXPERT = re.compile(r"^(.*\.mlp\.experts)\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$")
_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.*)$")
_MTP_OWN = ("enorm.", "hnorm.", "eh_proj.", "shared_head.norm.")
_MTP_SHARED = ("embed_tokens.", "shared_head.head.")


def _split_experts(prefix: str, name: str, t: torch.Tensor, out: dict) -> bool:
    if name == "mlp.experts.gate_up_proj":
        inter = t.shape[1] // 2
        for e in range(t.shape[0]):
            out[f"{prefix}mlp.experts.{e}.gate_proj.weight"] = t[e, :inter]
            out[f"{prefix}mlp.experts.{e}.up_proj.weight"] = t[e, inter:]
        return True
    if name == "mlp.experts.down_proj":
        for e in range(t.shape[0]):
            out[f"{prefix}mlp.experts.{e}.down_proj.weight"] = t[e]
        return True
    return False


def to_hf_state_dict(model, state: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """HF DeepseekV3 names for `state` (default: the model's own state dict; an FSDP run passes the
    consolidated one)."""
    cfg, L = model.config, model.config.num_hidden_layers
    state = model.state_dict() if state is None else state
    out: dict[str, torch.Tensor] = {}
    for key, t in state.items():
        if key.startswith("mtp."):
            k, rest = key[4:].split(".", 1)
            prefix = f"model.layers.{L + int(k)}."
            rest = rest[len("block."):] if rest.startswith("block.") else rest
        elif key.startswith("layers."):
            i, rest = key[7:].split(".", 1)
            prefix = f"model.layers.{i}."
        else:
            prefix, rest = ("" if key == "lm_head.weight" else "model."), key
        if not _split_experts(prefix, rest, t, out):
            out[prefix + rest] = t
    for k in range(cfg.num_nextn_predict_layers):  # V3 checkpoints carry copies of the shared tensors
        out[f"model.layers.{L + k}.embed_tokens.weight"] = state["embed_tokens.weight"]
        out[f"model.layers.{L + k}.shared_head.head.weight"] = state.get("lm_head.weight", state["embed_tokens.weight"])
    return out


def save_pretrained(model, path: str | os.PathLike, state_dict: dict[str, torch.Tensor] | None = None) -> None:
    from safetensors.torch import save_file

    os.makedirs(path, exist_ok=True)
    sd = {k: v.detach().contiguous().clone() for k, v in to_hf_state_dict(model, state_dict).items()}
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    save_file(sd, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    d = to_hf_dict(model.config)
    d["dtype"] = str(sd["model.embed_tokens.weight"].dtype).removeprefix("torch.")
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(d, f, indent=2, sort_keys=True)


def _read_tensors(path: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        sd: dict[str, torch.Tensor] = {}
        for fn in files:
            sd.update(load_file(os.path.join(path, fn)))
        return sd
    return load_file(os.path.join(path, "model.safetensors"))


def _internal_name(key: str, L: int) -> str | None:
    """HF key -> our key (None for the MTP copies of shared tensors)."""
    m = _LAYER.match(key)
    if not m:
        return key.removeprefix("model.")
    i, rest = int(m.group(1)), m.group(2)
    if i < L:
        return f"layers.{i}.{rest}"
    if rest.startswith(_MTP_SHARED):
        return None
    own = rest.startswith(_MTP_OWN)
    return f"mtp.{i - L}.{rest}" if own else f"mtp.{i - L}.block.{rest}"


def from_hf_state_dict(sd: dict[str, torch.Tensor], cfg) -> dict[str, torch.Tensor]:
    L, out, experts = cfg.num_hidden_layers, {}, {}
    for key, t in sd.items():
        m = _EXPERT.match(key)
        if m:  # per-expert keys are stacked below
            experts.setdefault(m.group(1), {}).setdefault(m.group(3), {})[int(m.group(2))] = t
            continue
        name = _internal_name(key, L)
        if name is None or (name.startswith("mtp.") and int(name.split(".")[1]) >= cfg.num_nextn_predict_layers):
            continue  # shared-tensor copies; MTP layers beyond the configured depth
        out[name] = t
    for prefix, parts in experts.items():
        name = _internal_name(prefix + ".x", L)[:-2]
        n = len(parts["down_proj"])
        gate = torch.stack([parts["gate_proj"][e] for e in range(n)])
        up = torch.stack([parts["up_proj"][e] for e in range(n)])
        out[name + ".gate_up_proj"] = torch.cat([gate, up], dim=1)  # (E, 2I, d)
        out[name + ".down_proj"] = torch.stack([parts["down_proj"][e] for e in range(n)])
    if cfg.tie_word_embeddings or "lm_head.weight" not in out:
        out["lm_head.weight"] = out["embed_tokens.weight"]
    return out


def _deinterleave_to_pairs(sd: dict[str, torch.Tensor], cfg) -> None:
    """rope_interleave=False checkpoints rotate (x[i], x[i + d_r/2]); move those rows to (2i, 2i+1)."""
    h = cfg.qk_rope_head_dim // 2
    perm = torch.stack([torch.arange(h), torch.arange(h) + h], dim=-1).reshape(-1)
    for key, t in list(sd.items()):
        if key.endswith(("q_proj.weight", "q_b_proj.weight")):
            w = t.view(cfg.num_attention_heads, cfg.qk_head_dim, -1).clone()
            w[:, cfg.qk_nope_head_dim:] = w[:, cfg.qk_nope_head_dim:][:, perm]
            sd[key] = w.view_as(t)
        elif key.endswith("kv_a_proj_with_mqa.weight"):
            w = t.clone()
            w[cfg.kv_lora_rank:] = t[cfg.kv_lora_rank:][perm]
            sd[key] = w


def from_pretrained(path: str | os.PathLike, dtype: torch.dtype | None = torch.float32, device=None):
    """Load a DeepseekV3 checkpoint directory (ours or transformers') into the native model."""
    from .transformer import Transformer

    path = str(path)
    with open(os.path.join(path, "config.json")) as f:
        raw = json.load(f)
    cfg = from_hf_dict(raw)
    with torch.device(device or "cpu"):
        model = Transformer(cfg, init=False)
    sd = from_hf_state_dict(_read_tensors(path), cfg)
    if raw.get("rope_interleave", True) is False:
        _deinterleave_to_pairs(sd, cfg)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    absent_mtp = sorted({int(k.split(".")[1]) for k in missing if k.startswith("mtp.")})
    for k in absent_mtp:  # transformers does not save MTP modules: start them fresh
        warnings.warn(f"{path}: no weights for MTP module {k}; initialised randomly")
        model.reset_parameters(model.mtp[k])
    missing = [k for k in missing if not k.startswith("mtp.")]
    if missing or unexpected:
        raise ValueError(f"checkpoint {path} does not match its config: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    if dtype is not None:
        model = model.to(dtype)  # the router bias and RoPE frequencies stay fp32
    return model.eval()
