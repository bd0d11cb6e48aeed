"""Format, tag count, language consistency and DAPO soft overlong punishment.

All four are linear scans (str.find / str.count and one pass over characters; no regular
expressions), so they cannot hang and run inside the trainer process.

Pre-filled prompts: when the prompt ends inside the assistant turn (e.g. with "<think>\\n"),
that prefix belongs to the response. The format, tag-count and language verifiers judge
`prefill + completion`, with `prefill` taken from the `prefill` option or else
`example.get("prefill", "")`, so a pre-filled `<think>` never zeroes the format reward.
"""

from __future__ import annotations

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

SCRIPTS = {
    "latin": ((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x1E00, 0x1EFF)),
    "han": ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F)),
    "kana": ((0x3040, 0x30FF), (0x31F0, 0x31FF)),
    "hangul": ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F)),
    "cyrillic": ((0x400, 0x52F),),
    "arabic": ((0x600, 0x6FF), (0x750, 0x77F)),
    "devanagari": ((0x900, 0x97F),),
    "greek": ((0x370, 0x3FF),),
}
LANGUAGE_SCRIPTS = {
    "en": ("latin",), "fr": ("latin",), "de": ("latin",), "es": ("latin",), "it": ("latin",),
    "pt": ("latin",), "zh": ("han",), "ja": ("han", "kana"), "ko": ("hangul", "han"),
    "ru": ("cyrillic",), "uk": ("cyrillic",), "ar": ("arabic",), "hi": ("devanagari",),
    "el": ("greek",),
}
# scripts written without spaces: every character is a word of its own
UNSPACED = ("han", "kana")


def script_of(ch: str) -> str | None:
    code = ord(ch)
    for name, ranges in SCRIPTS.items():
        if any(lo <= code <= hi for lo, hi in ranges):
            return name
    return "other" if ch.isalpha() else None


def words_by_script(text: str) -> list[str]:
    """The script of each word: a word is a run of letters of one spaced script, or a single
    character of an unspaced script (Chinese, Japanese kana)."""
    words = []
    current = None
    for ch in text:
        script = script_of(ch)
        if script is None or script in UNSPACED:
            current = None
            if script is not None:
                words.append(script)
        elif script != current:
            words.append(script)
            current = script
    return words


def chain_of_thought(text: str) -> str:
    """The text inside <think>...</think>, or everything before <answer> when unclosed."""
    start = text.find(THINK)
    start = 0 if start < 0 else start + len(THINK)
    end = text.find(END_THINK, start)
    if end < 0:
        end = text.find(ANSWER, start)
    return text[start:] if end < 0 else text[start:end]


def language_consistency(completion: str, example: dict, language: str | None = None,
                         prefill: str | None = None) -> float | None:
    """Fraction of chain-of-thought words written in the target language's script (R1's
    language-consistency reward). Target: the `language` option, else example["meta"]
    ["language"], else English. None when the chain of thought has no words."""
    target = language or (example.get("meta") or {}).get("language") or "en"
    scripts = LANGUAGE_SCRIPTS.get(target, (target,))
    if not all(s in SCRIPTS for s in scripts):
        raise ValueError(f"unknown language or script {target!r}")
    words = words_by_script(chain_of_thought(full_response(completion, example, prefill)))
    if not words:
        return None
    return sum(w in scripts for w in words) / len(words)


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
