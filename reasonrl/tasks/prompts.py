"""Prompt formats: how an example becomes the text a model continues, and the card that keeps the
format with the weights.

`build_prompt(example, tokenizer, fmt, prefill, system=None)` is the one renderer used by training,
evaluation and sampling. `write_model_card(model_dir, fmt, tokenizer, ...)` records the format next
to a saved model (`reasonrl.json`), rewrites the saved chat template so that plain transformers
`apply_chat_template(..., add_generation_prompt=True)` renders exactly `build_prompt`, and writes a
`generation_config.json` with the stop behaviour. `read_model_card` / `resolve_prompt_spec` read it
back. Nothing here imports torch or transformers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, get_args

from .templates import R1_ZERO_INSTRUCTION

PromptFormat = Literal["r1_zero", "r1_short", "plain", "chat", "r1_math"]
PromptFormatChoice = Literal["auto", "r1_zero", "r1_short", "plain", "chat", "r1_math"]  # auto: the model's card
PROMPT_FORMATS: tuple[str, ...] = get_args(PromptFormat)
PROMPT_FORMAT_CHOICES: tuple[str, ...] = get_args(PromptFormatChoice)
TEMPLATE_FORMATS = ("r1_zero", "r1_short", "plain")  # rendered by our own chat template (no model template)

FORMAT_FILE = "reasonrl.json"  # written next to a model: the prompt format it was trained with
CHAT_TEMPLATE_FILE = "chat_template.jinja"  # where transformers 5 saves a tokenizer's chat template
GENERATION_CONFIG_FILE = "generation_config.json"
DEFAULT_STOP_STRINGS = ("</answer>",)  # what rl.stop_strings and the held-out evaluation stop at

R1_SYSTEM = ("The assistant first thinks about the reasoning process and then gives the answer. The reasoning "
             "process and the answer are enclosed within <think> </think> and <answer> </answer> tags.")
USER_PREFIX, ASSISTANT_PREFIX = "User: ", "Assistant: "
# DeepSeek-R1's recommended math evaluation prompt: no system message, the instruction in the user
# turn, and the response forced to open its chain of thought
R1_MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
R1_MATH_PREFILL = "<think>\n"


def default_system(prompt_format: str) -> str | None:
    """The system text a format uses when none is given: the R1-Zero instruction for `r1_zero`,
    the R1 instruction for `chat`, nothing for `r1_short` and `plain`."""
    return {"r1_zero": R1_ZERO_INSTRUCTION, "chat": R1_SYSTEM}.get(prompt_format)


def _check_format(prompt_format: str) -> None:
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"unknown prompt format {prompt_format!r} (expected one of {', '.join(PROMPT_FORMATS)})")


def build_prompt(example: dict, tokenizer, prompt_format: str, prefill: str = "", system: str | None = None) -> str:
    """The prompt text for `example` (its `prompt`, or `messages` for `chat`).

    `r1_zero`: `{system}\\nUser: {prompt}\\nAssistant: ` with the R1-Zero instruction as system (the
    R1-Zero template); `r1_short`: the same conversation without a system line (tiny models);
    `plain`: `{prompt}\\n`; `chat`: the tokenizer's own chat template with the R1 instruction as
    system message (instruct models); `r1_math`: R1's math evaluation prompt, the user turn
    `{prompt}\n` + R1_MATH_INSTRUCTION through the tokenizer's chat template (without one, e.g.
    native tokenizers: the `r1_short` conversation), the answer opened with `<think>\n` unless
    another prefill is given. `system=None` keeps the format's default, `""` drops it.
    `prefill` starts the assistant's turn (e.g. "<think>").
    """
    _check_format(prompt_format)
    system = default_system(prompt_format) if system is None else system
    if prompt_format == "r1_math":
        return _r1_math_prompt(example, tokenizer, system, prefill or R1_MATH_PREFILL)
    if prompt_format == "chat":
        return _chat_prompt(example, tokenizer, system, prefill)
    head = f"{system}\n" if system else ""
    if prompt_format == "plain":
        return f"{head}{example['prompt']}\n{prefill}"
    return f"{head}{USER_PREFIX}{example['prompt']}\n{ASSISTANT_PREFIX}{prefill}"


def _r1_math_prompt(example: dict, tokenizer, system: str | None, prefill: str) -> str:
    question = {"prompt": f"{example['prompt']}\n{R1_MATH_INSTRUCTION}"}
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return _chat_prompt(question, tokenizer, system, prefill)
    head = f"{system}\n" if system else ""
    return f"{head}{USER_PREFIX}{question['prompt']}\n{ASSISTANT_PREFIX}{prefill}"


def _chat_prompt(example: dict, tokenizer, system: str, prefill: str) -> str:
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ValueError("prompt format 'chat' needs a tokenizer with a chat template; "
                         "use r1_zero, r1_short or plain for this model")
    messages = example.get("messages") or ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": example["prompt"]}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    # a model card's template may open the answer with the prefill already: do not repeat it
    return text if prefill and text.endswith(prefill) else text + prefill


@dataclass(frozen=True)
class PromptSpec:
    """How a model is prompted: what its card (`reasonrl.json`) records."""

    prompt_format: str
    system: str | None = None  # None: the format's default (see default_system)
    prefill: str = ""
    stop_strings: tuple[str, ...] = DEFAULT_STOP_STRINGS

    def render(self, example: dict, tokenizer) -> str:
        return build_prompt(example, tokenizer, self.prompt_format, self.prefill, self.system)


def read_model_card(model_dir) -> PromptSpec | None:
    """The prompt spec recorded in `model_dir/reasonrl.json`, or None when there is none.

    A checkpoint written before checkpoints carried cards (`<run>/checkpoints/step-N/`) inherits
    the card of its run's final `<run>/model/`: both were trained with the same prompt format.
    """
    if not model_dir:
        return None
    here = Path(str(model_dir))
    own, inherited = here / FORMAT_FILE, here.parent.parent / "model" / FORMAT_FILE
    if own.is_file():
        return _parse_card(own)
    if here.parent.name == "checkpoints" and inherited.is_file():
        return _parse_card(inherited)
    return None


def _parse_card(path: Path) -> PromptSpec:
    try:
        raw = json.loads(path.read_text())
        spec = PromptSpec(raw["prompt_format"], raw.get("system"), raw.get("prefill", ""),
                          tuple(raw.get("stop_strings", DEFAULT_STOP_STRINGS)))
        _check_format(spec.prompt_format)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a valid model card ({type(exc).__name__}: {exc})") from None
    return spec


def resolve_prompt_spec(choice: str, model_dir=None, policy=None) -> PromptSpec:
    """`auto`: the card recorded with the model, else r1_zero for native models and chat for
    transformers models. An explicit format keeps the card's system and prefill when it is the
    recorded format, and the card's stop strings in any case."""
    card = read_model_card(model_dir)
    if choice == "auto":
        if card is not None:
            return card
        return PromptSpec("r1_zero" if getattr(policy, "is_native", False) else "chat")
    _check_format(choice)
    if card is not None and card.prompt_format == choice:
        return card
    return PromptSpec(choice, stop_strings=card.stop_strings if card else DEFAULT_STOP_STRINGS)


def resolve_prompt_format(prompt_format: str, model_dir, policy) -> str:
    """The format name of `resolve_prompt_spec` (kept for callers that only need the name)."""
    return resolve_prompt_spec(prompt_format, model_dir, policy).prompt_format


def record_prompt_format(model_dir, prompt_format: str) -> None:
    """Only the format name into `reasonrl.json` (other keys kept); `write_model_card` does it all."""
    path = Path(model_dir) / FORMAT_FILE
    old = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**old, "prompt_format": prompt_format}) + "\n")


def chat_template(prompt_format: str = "r1_short", system: str | None = None, prefill: str = "") -> str:
    """A Jinja chat template that renders `build_prompt(..., prompt_format, prefill, system)` for one
    user turn (`add_generation_prompt=True`), and multi-turn conversations in the same format:

        {system}\\n                       the first message if it is a system one, else the default
        User: {user}\\n                   (`plain`: {user}\\n)
        Assistant: {assistant}<eos>\\n    (`plain`: {assistant}<eos>\\n)
        Assistant: {prefill}             the generation prompt (`plain`: {prefill})

    No `<bos>`: training never puts one in front of a prompt.
    """
    if prompt_format not in TEMPLATE_FORMATS:
        raise ValueError(f"no built-in chat template for prompt format {prompt_format!r} "
                         f"(expected one of {', '.join(TEMPLATE_FORMATS)})")
    system = default_system(prompt_format) if system is None else system
    user, assistant = ("", "") if prompt_format == "plain" else (USER_PREFIX, ASSISTANT_PREFIX)
    lit = json.dumps  # a JSON string is a valid Jinja string literal with the same value
    return (
        f"{{%- set system = {lit(system) if system else 'none'} -%}}"
        "{%- set turns = messages -%}"
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{%- set system = messages[0]['content'] -%}{%- set turns = messages[1:] -%}"
        "{%- endif -%}"
        "{%- if system -%}{{ system + '\\n' }}{%- endif -%}"
        "{%- for message in turns -%}"
        "{%- if message['role'] == 'system' -%}{{ message['content'] + '\\n' }}"
        f"{{%- elif message['role'] == 'user' -%}}{{{{ {lit(user)} + message['content'] + '\\n' }}}}"
        "{%- elif message['role'] == 'assistant' -%}"
        f"{{{{ {lit(assistant)} + message['content'] + eos_token + '\\n' }}}}"
        "{%- else -%}{{ raise_exception('unknown role: ' + message['role']) }}"
        "{%- endif -%}"
        "{%- endfor -%}"
        f"{{%- if add_generation_prompt -%}}{{{{ {lit(assistant + prefill)} }}}}{{%- endif -%}}"
    )


def write_model_card(model_dir, prompt_format: str, tokenizer, system: str | None = None, prefill: str = "",
                     stop_strings=DEFAULT_STOP_STRINGS) -> PromptSpec:
    """Make a saved model directory carry its prompt format; call it after the model and tokenizer
    files are written. Idempotent and cheap (three small files; nothing is loaded).

    - `reasonrl.json`: `prompt_format`, `system`, `prefill`, `stop_strings`;
    - for `r1_zero`, `r1_short`, `plain`, when the directory holds a tokenizer: its chat template
      becomes `chat_template(prompt_format, system, prefill)`, so plain transformers
      `apply_chat_template([user turn], add_generation_prompt=True)` is exactly `build_prompt`
      (`chat` keeps the model's own template: that is the format);
    - `generation_config.json` (other keys of an existing one kept; skipped without a tokenizer):
      bos/eos/pad ids; stop strings that are one token are added to `eos_token_id` (plain
      `generate` stops there without a tokenizer), longer ones go to `stop_strings` (transformers
      then needs `generate(..., tokenizer=)`).
    """
    _check_format(prompt_format)
    out = Path(model_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"model directory not found: {out}")
    stops = (stop_strings,) if isinstance(stop_strings, str) else tuple(stop_strings or ())
    spec = PromptSpec(prompt_format, system, prefill, stops)
    card = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(spec).items()}
    _write_if_changed(out / FORMAT_FILE, json.dumps(card, indent=2) + "\n")
    if prompt_format in TEMPLATE_FORMATS and (out / "tokenizer_config.json").is_file():
        _write_chat_template(out, chat_template(prompt_format, system, prefill))
    if tokenizer is not None:  # the ids come from the tokenizer; without one only the card is written
        _write_generation_config(out, tokenizer, spec.stop_strings)
    return spec


def _write_if_changed(path: Path, text: str) -> None:
    # rewriting identical files would only bump mtimes (and race readers of a finished checkpoint)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _write_chat_template(out: Path, template: str) -> None:
    """transformers 5 reads `chat_template.jinja`; a `chat_template` key left in tokenizer_config.json
    by older writers would compete with it, so it is dropped."""
    _write_if_changed(out / CHAT_TEMPLATE_FILE, template)
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    if "chat_template" in config:
        del config["chat_template"]
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def _write_generation_config(out: Path, tokenizer, stop_strings: tuple[str, ...]) -> None:
    path = out / GENERATION_CONFIG_FILE
    config = json.loads(path.read_text()) if path.is_file() else {}
    eos = getattr(tokenizer, "eos_token_id", None)
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    long_stops = []
    for text in stop_strings:
        ids = tokenizer.encode(text, add_special_tokens=False)
        if len(ids) == 1:
            eos_ids += [ids[0]] if ids[0] not in eos_ids else []
        else:
            long_stops.append(text)
    if eos_ids:
        config["eos_token_id"] = eos_ids[0] if len(eos_ids) == 1 else eos_ids
    for key in ("bos_token_id", "pad_token_id"):
        value = getattr(tokenizer, key, None)
        if value is not None:
            config[key] = value
    if config.get("pad_token_id") is None and eos_ids:
        config["pad_token_id"] = eos_ids[0]  # batched generate needs one; eos is transformers' own fallback
    config.pop("stop_strings", None)
    if long_stops:
        config["stop_strings"] = long_stops
    _write_if_changed(path, json.dumps(config, indent=2, sort_keys=True) + "\n")
