"""The native DeepSeek-V3 model behind the Policy interface of docs/design.md."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .config import ModelConfig
from .layers import RMSNorm, Rotary, SwiGLU
from .mla import MLA, LatentCache
from .moe import Experts, Gate, MoE
from .mtp import MTPModule


@dataclass
class TrainOutput:
    logits: torch.Tensor | None  # (B, T, V); None when asked for the hidden states instead
    mtp_logits: list[torch.Tensor] = field(default_factory=list)  # [k-1]: (B, T-k, V), row t -> token t+k+1
    moe_load: torch.Tensor | None = None  # (n_moe_layers, E): main layers, then MTP blocks
    aux_loss: torch.Tensor | None = None  # sequence-wise balance loss (0 when alpha = 0)
    hidden: torch.Tensor | None = None  # (B, T, d) after the final norm: lm_head(hidden) = logits


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, idx: int, softmax_mult: float):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = MLA(cfg, softmax_mult)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MoE(cfg) if cfg.is_moe_layer(idx) else SwiGLU(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x, cos, sin, cache=None, layer=0, positions=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, layer, positions)
        h = self.post_attention_layernorm(x)
        if isinstance(self.mlp, MoE):
            y, load, aux = self.mlp(h)
            return x + y, load, aux
        return x + self.mlp(h), None, None


class Transformer(nn.Module):
    is_native = True

    def __init__(self, cfg: ModelConfig, init: bool = True):
        super().__init__()
        self.config = cfg
        L = cfg.num_hidden_layers
        self.rotary = Rotary(cfg.qk_rope_head_dim, cfg.rope_theta, cfg.rope_scaling)
        mult = self.rotary.softmax_mult
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Block(cfg, i, mult) for i in range(L))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.mtp = nn.ModuleList(MTPModule(cfg, Block(cfg, L + k, mult)) for k in range(cfg.num_nextn_predict_layers))
        if init and self.lm_head.weight.device.type != "meta":
            self.reset_parameters()
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        self.activation_checkpointing = False  # set_activation_checkpointing

    @torch.no_grad()
    def reset_parameters(self, module: nn.Module | None = None) -> None:
        std = self.config.initializer_range
        for m in (module or self).modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.normal_(0.0, std)
            elif isinstance(m, Experts):
                m.gate_up_proj.normal_(0.0, std)
                m.down_proj.normal_(0.0, std)
            elif isinstance(m, Gate):
                m.weight.normal_(0.0, std)
                m.e_score_correction_bias.zero_()
            elif isinstance(m, RMSNorm):
                m.weight.fill_(1.0)

    # ----- Policy interface -----
    def make_cache(self, batch_size: int, max_len: int) -> LatentCache:
        cfg, p = self.config, self.embed_tokens.weight
        args = (batch_size, max_len, cfg.kv_lora_rank, cfg.qk_rope_head_dim, p.dtype, p.device)
        cache = LatentCache(cfg.num_hidden_layers, *args)
        cache.mtp = [LatentCache(1, *args) for _ in self.mtp]
        return cache

    def _positions(self, ids, positions):
        if positions is None:
            positions = torch.arange(ids.shape[1], device=ids.device).expand(ids.shape[0], -1)
        return positions

    def _trunk(self, ids, positions=None, cache=None):
        """-> hidden before the final norm (B, T, d), per-MoE-layer loads, summed aux loss."""
        positions = self._positions(ids, positions)
        x = self.embed_tokens(ids)
        cos, sin = self.rotary.cos_sin(positions, x.dtype)
        loads, aux = [], None
        recompute = self.activation_checkpointing and cache is None and torch.is_grad_enabled()
        for i, layer in enumerate(self.layers):
            if recompute:  # keep only the block's input; its activations are recomputed in backward
                x, load, a = torch.utils.checkpoint.checkpoint(layer, x, cos, sin, None, i, positions,
                                                               use_reentrant=False)
            else:
                x, load, a = layer(x, cos, sin, cache, i, positions)
            if load is not None:
                loads.append(load)
            if a is not None:
                aux = a if aux is None else aux + a
        return x, loads, aux

    def forward(self, ids: torch.Tensor, positions: torch.Tensor | None = None,
                cache: LatentCache | None = None) -> torch.Tensor:
        return self.lm_head(self.norm(self._trunk(ids, positions, cache)[0]))

    def hidden_states(self, ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Last hidden state after the final norm (B, T, d), without computing logits (the
        (B, T, V) projection is the expensive part for a value head): forward = lm_head of it."""
        return self.norm(self._trunk(ids, positions)[0])

    def forward_hidden(self, ids, positions=None, cache=None) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (logits, last decoder layer output before the final norm): what MTP consumes."""
        h = self._trunk(ids, positions, cache)[0]
        return self.lm_head(self.norm(h)), h

    def mtp_forward(self, hidden, next_ids, positions=None, cache=None, depth: int = 0):
        """MTP module `depth` (0-based): hidden (B, T, d) at positions p, next_ids (B, T) the
        tokens at p + 1 -> (logits predicting tokens at p + 2 (for depth 0), its hidden (B, T, d))."""
        mod = self.mtp[depth]
        positions = self._positions(next_ids, positions)
        emb = self.embed_tokens(next_ids)
        cos, sin = self.rotary.cos_sin(positions, emb.dtype)
        h = mod(hidden, emb, cos, sin, None if cache is None else cache.mtp[depth], positions)[0]
        return self.lm_head(mod.shared_head.norm(h)), h

    def mtp_logits(self, hidden, next_ids, positions=None, cache=None, depth: int = 0) -> torch.Tensor:
        return self.mtp_forward(hidden, next_ids, positions, cache, depth)[0]

    def forward_train(self, ids: torch.Tensor, mtp: bool = True, logits: bool = True) -> TrainOutput:
        """The training forward. mtp=False skips the MTP modules (RL scores only next tokens: their
        logits would be discarded, and the trunk's outputs and gradients do not depend on them);
        moe_load then has the main layers' rows only. logits=False returns the normed hidden states
        instead of the (B, T, V) logits, for callers that project only the positions they need."""
        h, loads, aux = self._trunk(ids)
        normed = self.norm(h)
        out = self.lm_head(normed) if logits else None  # (B, T, V)
        T, mtp_logits = ids.shape[1], []
        for k, mod in enumerate(self.mtp if mtp else (), start=1):
            if T - k < 1:
                break
            pos = torch.arange(T - k, device=ids.device).expand(ids.shape[0], -1)
            cos, sin = self.rotary.cos_sin(pos, h.dtype)
            h, load, a = mod(h[:, : T - k], self.embed_tokens(ids[:, k:]), cos, sin)
            mtp_logits.append(self.lm_head(mod.shared_head.norm(h)))
            if load is not None:
                loads.append(load)
            if a is not None:
                aux = a if aux is None else aux + a
        moe_load = torch.stack(loads) if loads else None
        if aux is None:
            aux = normed.new_zeros(())
        return TrainOutput(out, mtp_logits, moe_load, aux, hidden=None if logits else normed)

    def set_activation_checkpointing(self, on: bool) -> None:
        """Recompute each decoder block's activations in backward instead of keeping them (training
        forwards without a cache; the MTP modules keep theirs)."""
        self.activation_checkpointing = on

    def prefix_hidden(self, prompts: torch.Tensor, key_mask: torch.Tensor):
        """Shared-prompt training forward, part 1: prompts (U, P), right-padded (key_mask (U, P)
        marks the real tokens) -> (normed hidden (U, P, d), state for `suffix_hidden`, MoE loads)."""
        from .prefix import PrefixRecorder

        recorder = PrefixRecorder()
        h, loads, _ = self._trunk(prompts, cache=recorder)
        return self.norm(h), (recorder, key_mask), loads

    def suffix_hidden(self, ids: torch.Tensor, positions: torch.Tensor, state, of_row: torch.Tensor):
        """Part 2: row r's tokens ids (N, T) at `positions` (N, T), attending to prompt of_row[r] of
        `state` -> (normed hidden (N, T, d), MoE loads). Equals the full forward within rounding."""
        from .prefix import SharedPrefix

        recorder, key_mask = state
        h, loads, _ = self._trunk(ids, positions, SharedPrefix(recorder, of_row, key_mask.index_select(0, of_row)))
        return self.norm(h), loads

    def output_head(self) -> nn.Linear:
        """The projection with forward_train(ids).logits == output_head()(forward_train(ids, logits=False).hidden)."""
        return self.lm_head

    def moe_layers(self) -> list[MoE]:
        """In moe_load row order: main decoder layers, then MTP blocks."""
        blocks = list(self.layers) + [m.block for m in self.mtp]
        return [b.mlp for b in blocks if isinstance(b.mlp, MoE)]

    @torch.no_grad()
    def update_moe_bias(self, moe_load: torch.Tensor | None, gamma: float | None = None) -> None:
        if moe_load is None:
            return
        gamma = self.config.bias_update_gamma if gamma is None else gamma
        layers = self.moe_layers()
        if moe_load.shape[0] not in (len(layers), self._main_moe_layers()):
            raise ValueError(f"moe_load has {moe_load.shape[0]} rows, the model {len(layers)} MoE layers")
        # a load without the MTP rows (forward_train(mtp=False)) leaves the MTP blocks' biases alone
        for moe, load in zip(layers, moe_load):
            moe.update_bias(load, gamma)

    def _main_moe_layers(self) -> int:
        return sum(isinstance(b.mlp, MoE) for b in self.layers)

    def save_pretrained(self, path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """`state_dict`: the weights to write instead of the module's own (an FSDP run's consolidated ones)."""
        from .hf import save_pretrained
        save_pretrained(self, path, state_dict)

    def num_parameters(self, mtp: bool = True, activated: bool = False) -> int:
        """Parameter count (works on the meta device). activated: per token (K of E experts)."""
        cfg, total = self.config, 0
        for name, p in self.named_parameters():
            if not mtp and name.startswith("mtp."):
                continue
            n = p.numel()
            if activated and (name.endswith("gate_up_proj") or name.endswith("experts.down_proj")):
                n = n * cfg.num_experts_per_tok // cfg.n_routed_experts
            total += n
        return total
