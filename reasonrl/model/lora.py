"""LoRA adapters on a transformers policy, through peft (extra: reasonrl[lora]).

    spec = LoraSpec(**cfg.model.lora)           # {r, alpha, dropout, target_modules}
    policy = add_lora(policy, spec)             # an HFPolicy: only the adapters require grad
    save_adapter(policy, directory)             # checkpoints: adapter weights and config only
    load_adapter(policy, directory)             # resume: base from model.path + these adapters
    export_merged(policy, directory)            # final model/: merged, loads in plain transformers

The adapters are injected into the wrapped model in place (peft's `get_peft_model`), so the
policy keeps calling the transformers model it always did; the PeftModel is kept beside it, not
registered as a submodule, for saving and merging. The fused sampling path reads raw projection
weights and would miss the adapters, so LoRA policies sample through transformers' own forward.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ADAPTER_FILE = "adapter_model.safetensors"


@dataclass
class LoraSpec:
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: list[str] | str = field(default="all-linear")


def lora_spec(options: dict[str, Any]) -> LoraSpec | None:
    """The spec of a `model.lora` mapping (empty: LoRA off); unknown keys and bad values refused."""
    if not options:
        return None
    names = {f.name for f in fields(LoraSpec)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValueError(f"unknown model.lora key '{unknown[0]}' (keys: {', '.join(sorted(names))})")
    spec = LoraSpec(**options)
    if int(spec.r) != spec.r or spec.r < 1 or spec.alpha <= 0 or not 0 <= spec.dropout < 1:
        raise ValueError("model.lora needs r >= 1 (an integer), alpha > 0 and 0 <= dropout < 1")
    return spec


def import_peft():
    try:
        import peft
    except ImportError as e:
        raise ImportError("model.lora needs peft: pip install 'reasonrl[lora]'") from e
    return peft


def add_lora(policy, spec: LoraSpec):
    """Inject adapters into an HFPolicy's model and freeze everything else."""
    if getattr(policy, "is_native", True):
        raise ValueError("model.lora applies to transformers policies only (model.path to a transformers model)")
    peft = import_peft()
    config = peft.LoraConfig(r=int(spec.r), lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                             target_modules=spec.target_modules, task_type="CAUSAL_LM")
    peft_model = peft.get_peft_model(policy.hf, config)  # injects into policy.hf in place, freezes the base
    policy.__dict__["peft"] = peft_model  # beside the module tree: no second copy in state_dict()
    policy.refresh_fast_weights()
    return policy


def has_lora(policy) -> bool:
    return "peft" in getattr(policy, "__dict__", {})


def save_adapter(policy, directory) -> None:
    """Adapter weights and config only (what trains); the base stays at model.path."""
    policy.peft.save_pretrained(str(directory))


def load_adapter(policy, directory) -> None:
    from safetensors.torch import load_file

    peft = import_peft()
    state = load_file(str(Path(directory) / ADAPTER_FILE), device=str(next(policy.parameters()).device))
    result = peft.set_peft_model_state_dict(policy.peft, state)
    missing = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
    if missing:
        raise KeyError(f"{directory} holds adapter weights this model has no place for: {missing[0]}")


def merged_model(policy):
    """A plain transformers model with the adapters folded into the base weights (a copy: the
    training policy keeps its adapters)."""
    return copy.deepcopy(policy.peft).merge_and_unload()
