"""Behaviour analytics of completions (pure Python, no torch): reflection words, language mixing,
response lengths. These are the "aha moment" curves of R1 section 2.2.4 and Dr. GRPO.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Sequence

# The reflective words R1 counted (their frequency rose 5-7x during R1-Zero training).
R1_REFLECTION_WORDS: tuple[str, ...] = (
    "wait", "mistake", "however", "but", "retry", "error", "verify", "wrong", "evaluate", "check",
)
# Dr. GRPO's strict pool: phrases that are almost always genuine self-reflection ("but" is not).
STRICT_REFLECTION_WORDS: tuple[str, ...] = (
    "recheck", "rethink", "reassess", "reevaluate", "re-examine", "reconsider", "double-check",
    "check again", "think again", "verify again",
)

_WORD = re.compile(r"\w+(?:[-']\w+)*")


def _pattern(words: Sequence[str]) -> re.Pattern:
    # Longest first so "check again" wins over "check" where both are listed; spaces inside a
    # phrase match any whitespace (phrases may wrap lines).
    alts = sorted((re.escape(w.lower()).replace(r"\ ", r"\s+") for w in words), key=len, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(alts) + r")(?![\w-])", re.IGNORECASE)


def cot_text(text: str) -> str:
    """The chain of thought: the text before ``</think>`` (prompts may already open ``<think>``),
    without the ``<think>`` tag; the whole text when there is no ``</think>``."""
    head = text.split("</think>", 1)[0]
    return head.replace("<think>", "")


def reflection_counts(texts: Sequence[str], words: Sequence[str] = R1_REFLECTION_WORDS) -> Counter:
    """Occurrences of each reflection word/phrase over all texts (whole words, any case).

    Hyphenated words are single words: "double-check" does not count as "check", and
    "checked"/"checks" do not count either (R1 lists exact words).
    """
    pat = _pattern(words)
    counts: Counter = Counter({w.lower(): 0 for w in words})
    for text in texts:
        for m in pat.finditer(text):
            counts[re.sub(r"\s+", " ", m.group(0).lower())] += 1
    return counts


def reflection_rate(texts: Sequence[str], words: Sequence[str] = R1_REFLECTION_WORDS) -> float:
    """Fraction of responses containing at least one reflection word (0.0 for no texts).

    A per-response fraction, unlike a per-word density, does not rise merely because responses
    grow longer; see :func:`reflection_density` for the per-1000-words rate.
    """
    if not texts:
        return 0.0
    pat = _pattern(words)
    return sum(1 for t in texts if pat.search(t)) / len(texts)


def reflection_density(texts: Sequence[str], words: Sequence[str] = R1_REFLECTION_WORDS) -> float:
    """Reflection words per 1000 words over all texts (words: runs of letters/digits)."""
    n_words = sum(len(_WORD.findall(t)) for t in texts)
    if n_words == 0:
        return 0.0
    return 1000.0 * sum(reflection_counts(texts, words).values()) / n_words


# ------------------------------------------------------------------------------------------------
# language mixing

# Scripts a target language is written in. Han is allowed for Japanese/Korean text.
TARGET_SCRIPTS: dict[str, frozenset[str]] = {
    "en": frozenset({"LATIN"}),
    "fr": frozenset({"LATIN"}),
    "de": frozenset({"LATIN"}),
    "es": frozenset({"LATIN"}),
    "zh": frozenset({"HAN"}),
    "ja": frozenset({"HAN", "KANA"}),
    "ko": frozenset({"HANGUL", "HAN"}),
    "ru": frozenset({"CYRILLIC"}),
    "el": frozenset({"GREEK"}),
    "ar": frozenset({"ARABIC"}),
}
_SCRIPT_ALIASES = {"CJK": "HAN", "HIRAGANA": "KANA", "KATAKANA": "KANA"}


def char_script(ch: str) -> str:
    """Script of a letter from its Unicode name: LATIN, HAN, KANA, HANGUL, CYRILLIC, GREEK ..."""
    name = unicodedata.name(ch, "")
    parts = name.split()
    if not parts:
        return "UNKNOWN"
    head = parts[1] if parts[0] in ("FULLWIDTH", "HALFWIDTH") and len(parts) > 1 else parts[0]
    return _SCRIPT_ALIASES.get(head, head)


def script_words(text: str) -> list[tuple[str, str]]:
    """Maximal runs of letters of one script, as ``(script, run)``; digits and symbols split runs."""
    runs: list[tuple[str, str]] = []
    cur, cur_script = [], None
    for ch in text:
        script = char_script(ch) if ch.isalpha() else None
        if script != cur_script and cur:
            runs.append((cur_script, "".join(cur)))
            cur = []
        if script is not None:
            cur.append(ch)
        cur_script = script
    if cur:
        runs.append((cur_script, "".join(cur)))
    return runs


# LaTeX math and commands are notation, not language.
_MATH = re.compile(r"\$\$.*?\$\$|\$.*?\$|\\\(.*?\\\)|\\\[.*?\\\]|\\[A-Za-z]+", re.DOTALL)


def foreign_words(text: str, target: str = "en") -> list[str]:
    """Words not written in the target language's scripts.

    Ignored as notation: LaTeX math/commands, single letters (variables, pi) and Greek letters in
    non-Greek text.
    """
    if target not in TARGET_SCRIPTS:
        raise ValueError(f"unknown target language {target!r}; known: {sorted(TARGET_SCRIPTS)}")
    allowed = TARGET_SCRIPTS[target]
    out = []
    for script, word in script_words(_MATH.sub(" ", text)):
        if script in allowed or len(word) == 1 or script == "GREEK":
            continue
        out.append(word)
    return out


def language_mixing_rate(texts: Sequence[str], target: str = "en", cot_only: bool = True) -> float:
    """Fraction of responses whose chain of thought contains a word of another script.

    Script-level detection: it catches Chinese in an English CoT (R1-Zero's failure mode) but not
    French in an English one. ``cot_only`` restricts the check to :func:`cot_text`.
    """
    if not texts:
        return 0.0
    mixed = sum(1 for t in texts if foreign_words(cot_text(t) if cot_only else t, target))
    return mixed / len(texts)


# ------------------------------------------------------------------------------------------------
# lengths


def response_length_stats(
    lengths: Sequence[int | float], correct: Sequence[bool | float] | None = None
) -> dict[str, float]:
    """``length/mean``, ``length/max`` and, given ``correct`` (truthy = correct), the mean length of
    correct and of incorrect responses; a key is absent when it has no responses."""
    if not lengths:
        return {}
    stats = {"length/mean": sum(lengths) / len(lengths), "length/max": float(max(lengths))}
    if correct is None:
        return stats
    if len(correct) != len(lengths):
        raise ValueError(f"{len(lengths)} lengths but {len(correct)} correctness flags")
    right = [n for n, c in zip(lengths, correct) if c]
    wrong = [n for n, c in zip(lengths, correct) if not c]
    if right:
        stats["length/correct"] = sum(right) / len(right)
    if wrong:
        stats["length/incorrect"] = sum(wrong) / len(wrong)
    return stats
