"""Format, tag count, language consistency and DAPO soft overlong punishment.

All four are linear scans (str.find / str.count and one pass over characters; no regular
expressions), so they cannot hang and run inside the trainer process. Scripts, words and the
chain of thought come from :mod:`reasonrl.text`.

Pre-filled prompts: when the prompt ends inside the assistant turn (e.g. with "<think>\\n"),
that prefix belongs to the response. The format, tag-count and language verifiers judge
`prefill + completion`, with `prefill` taken from the `prefill` option or else
`example.get("prefill", "")`, so a pre-filled `<think>` never zeroes the format reward.
"""

from __future__ import annotations

from reasonrl.text import chain_of_thought, target_fraction

THINK, END_THINK, ANSWER, END_ANSWER = "<think>", "</think>", "<answer>", "</answer>"
TAGS = (THINK, END_THINK, ANSWER, END_ANSWER)


def full_response(completion: str, example: dict, prefill: str | None) -> str:
    return (example.get("prefill", "") if prefill is None else prefill) + completion


def _ordered(text: str, start: int) -> tuple[int, int, int, int] | None:
    """Positions of <think>, </think>, <answer>, </answer> in that order from `start`."""
    positions = []
    pos = start
    for tag in TAGS:
        pos = text.find(tag, pos)
        if pos < 0:
            return None
        positions.append(pos)
        pos += len(tag)
    return tuple(positions)


def format_reward(completion: str, example: dict, mode: str = "strict",
                  prefill: str | None = None) -> float:
    """strict: the whole response is `<think>...</think>` then `<answer>...</answer>`, only
    whitespace around and between, each tag exactly once. soft: the four tags appear in order
    somewhere."""
    text = full_response(completion, example, prefill)
    if mode == "soft":
        return 1.0 if _ordered(text, 0) else 0.0
    if mode != "strict":
        raise ValueError(f"format mode must be 'strict' or 'soft', got {mode!r}")
    body = text.strip()
    if any(body.count(tag) != 1 for tag in TAGS):
        return 0.0
    found = _ordered(body, 0)
    if found is None or found[0] != 0 or not body.endswith(END_ANSWER):
        return 0.0
    between = body[found[1] + len(END_THINK):found[2]]
    return 1.0 if not between.strip() else 0.0


def tag_count(completion: str, example: dict, prefill: str | None = None) -> float:
    """0.25 for each of <think>, </think>, <answer>, </answer> that occurs exactly once."""
    text = full_response(completion, example, prefill)
    return 0.25 * sum(text.count(tag) == 1 for tag in TAGS)


# ----------------------------------------------------------------------------- language

def language_consistency(completion: str, example: dict, language: str | None = None,
                         prefill: str | None = None) -> float | None:
    """Fraction of chain-of-thought words written in the target language's script (R1's
    language-consistency reward). Target: the `language` option, else example["meta"]
    ["language"], else English; a language code or a script name. None when the chain of
    thought has no words. Words, notation and the chain of thought are those of
    :mod:`reasonrl.text`, shared with the `lang_mix_rate` metric: the reward is < 1 exactly when
    the metric counts the response as mixed."""
    target = language or (example.get("meta") or {}).get("language") or "en"
    return target_fraction(chain_of_thought(full_response(completion, example, prefill)), target)


# ----------------------------------------------------------------------------- overlong

def overlong_penalty(completion: str, example: dict, max_len: int = 4096, cache_len: int = 1024,
                     length: int | None = None) -> float | None:
    """DAPO soft overlong punishment on the completion length |y| in tokens.

    0 if |y| <= Lmax - Lcache; ((Lmax - Lcache) - |y|) / Lcache if Lmax - Lcache < |y| <= Lmax;
    -1 beyond. |y| is the `length` option, else example["completion_tokens"] (the runtime
    fills it from `completion_lengths`); None when neither is known.
    """
    n = length if length is not None else example.get("completion_tokens")
    if n is None:
        return None
    if not 0 < cache_len <= max_len:
        raise ValueError(f"need 0 < cache_len <= max_len, got {cache_len}, {max_len}")
    threshold = max_len - cache_len
    if n <= threshold:
        return 0.0
    if n <= max_len:
        return (threshold - n) / cache_len
    return -1.0
