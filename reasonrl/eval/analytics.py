"""Behaviour analytics of completions (pure Python, no torch): reflection words, language mixing,
response lengths. These are the "aha moment" curves of R1 section 2.2.4 and Dr. GRPO.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

# One script detector and one chain-of-thought cut for metrics and rewards (re-exported here).
from reasonrl.text import chain_of_thought, foreign_words, script_words, target_scripts  # noqa: F401

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

def language_mixing_rate(texts: Sequence[str], target: str = "en", cot_only: bool = True,
                         prefill: str = "") -> float:
    """Fraction of responses whose chain of thought contains a word of another script.

    Script-level detection: it catches Chinese in an English CoT (R1-Zero's failure mode) but not
    French in an English one. ``cot_only`` restricts the check to
    :func:`reasonrl.text.chain_of_thought`; ``prefill`` (the start of the assistant turn that the
    prompt already wrote, e.g. ``"<think>\\n"``) is put before each text, as the rewards do.
    Words and notation are :mod:`reasonrl.text`'s, the same as the language reward's, so a
    response is mixed exactly when its ``language`` reward is below 1.
    """
    target_scripts(target)  # an unknown target fails even for an empty batch
    if not texts:
        return 0.0
    views = (prefill + t for t in texts)
    mixed = sum(1 for t in views if foreign_words(chain_of_thought(t) if cot_only else t, target))
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
