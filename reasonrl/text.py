"""Scripts, words and the chain of thought of a response: the one definition that the language
reward (``reasonrl.rewards.style.language_consistency``) and the language-mixing metric
(``reasonrl.eval.analytics.language_mixing_rate``) share, so that for any response

    mixed(text)  <=>  language_consistency(text) < 1        (None, no words: not mixed)
    language_consistency(text) = 1 - len(foreign_words(cot)) / len(language_words(cot))

with ``cot = chain_of_thought(text)``. Pure Python, standard library only; every function is a
single pass over the text (``str.find`` and a character loop, no regular expressions), so it
cannot hang on adversarial completions and may run inside the trainer process.

Definitions:

- script of a letter: the first word of its Unicode name, lower-cased (``latin``, ``cyrillic``,
  ``greek``, ``arabic``, ...), with ``cjk`` -> ``han`` and hiragana/katakana -> ``kana``;
- word: a maximal run of letters of one spaced script (combining marks continue it), or a single
  character of an unspaced script (Chinese, Japanese kana), which is how those scripts count;
- notation, not language: LaTeX math (``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``) and commands
  (``\\frac``), one-letter words of spaced scripts (variables) and Greek words in a non-Greek
  target (``pi``, ``theta``);
- chain of thought: the text after the first ``<think>`` (or from the start when the prompt
  opened it) up to ``</think>``, or up to ``<answer>`` when ``</think>`` is missing.
"""

from __future__ import annotations

import unicodedata

THINK, END_THINK, ANSWER = "<think>", "</think>", "<answer>"

# Scripts each language is written in (Han is part of Japanese and Korean text).
LANGUAGE_SCRIPTS: dict[str, tuple[str, ...]] = {
    "en": ("latin",), "fr": ("latin",), "de": ("latin",), "es": ("latin",), "it": ("latin",),
    "pt": ("latin",), "zh": ("han",), "ja": ("han", "kana"), "ko": ("hangul", "han"),
    "ru": ("cyrillic",), "uk": ("cyrillic",), "ar": ("arabic",), "hi": ("devanagari",),
    "el": ("greek",),
}
KNOWN_SCRIPTS = frozenset(s for scripts in LANGUAGE_SCRIPTS.values() for s in scripts)
UNSPACED = frozenset({"han", "kana"})  # every character is a word of its own
_ALIASES = {"cjk": "han", "hiragana": "kana", "katakana": "kana", "katakana-hiragana": "kana"}
_MATH = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def target_scripts(target: str) -> tuple[str, ...]:
    """The scripts of a language code (``en``, ``zh`` ...) or of a script name (``han``)."""
    if target in LANGUAGE_SCRIPTS:
        return LANGUAGE_SCRIPTS[target]
    if target in KNOWN_SCRIPTS:
        return (target,)
    raise ValueError(f"unknown target language or script {target!r}; "
                     f"known: {sorted(LANGUAGE_SCRIPTS)} or {sorted(KNOWN_SCRIPTS)}")


def char_script(ch: str) -> str | None:
    """Script of a letter (see the module docstring); None for anything that is not a letter."""
    if not ch.isalpha():
        return None
    if ch.isascii():  # the common case, without a Unicode name lookup
        return "latin"
    parts = unicodedata.name(ch, "").lower().split()
    if parts[:1] in (["fullwidth"], ["halfwidth"]):
        parts = parts[1:]
    return _ALIASES.get(parts[0], parts[0]) if parts else "other"


def strip_math(text: str) -> str:
    """``text`` with LaTeX math spans and commands replaced by a space."""
    out, i, n = [], 0, len(text)
    absent: set[str] = set()  # closers not found after some point: never searched for again
    while i < n:
        end = _math_end(text, i, absent) if text[i] in "$\\" else i
        if end > i:
            out.append(" ")
            i = end
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _math_end(text: str, i: int, absent: set[str]) -> int:
    """End of the math span or command starting at ``i``, or ``i`` when none starts there."""
    j = i + 1
    while j < len(text) and text[i] == "\\" and text[j].isascii() and text[j].isalpha():
        j += 1
    if j > i + 1:
        return j  # a command such as \frac or \alpha
    for opener, closer in _MATH:
        if text.startswith(opener, i) and closer not in absent:
            k = text.find(closer, i + len(opener))
            if k >= 0:
                return k + len(closer)
            absent.add(closer)  # positions only grow, so it stays absent
    return i


def script_words(text: str) -> list[tuple[str, str]]:
    """Words of ``text`` as ``(script, word)``; digits, spaces and symbols separate words."""
    words: list[tuple[str, str]] = []
    cur: list[str] = []
    cur_script = None
    for ch in text:
        script = char_script(ch)
        if script is None and cur and unicodedata.category(ch).startswith("M"):
            cur.append(ch)  # a combining mark (Devanagari vowel signs) continues its word
            continue
        if cur and (script != cur_script or script in UNSPACED):
            words.append((cur_script, "".join(cur)))
            cur = []
        cur_script = script
        if script is not None:
            cur.append(ch)
    if cur:
        words.append((cur_script, "".join(cur)))
    return words


def language_words(text: str, target: str = "en") -> list[tuple[str, str]]:
    """Words of ``text`` that are language rather than notation, for a ``target`` language."""
    greek_is_notation = "greek" not in target_scripts(target)
    return [(s, w) for s, w in script_words(strip_math(text))
            if not ((len(w) == 1 and s not in UNSPACED) or (s == "greek" and greek_is_notation))]


def foreign_words(text: str, target: str = "en") -> list[str]:
    """Language words of ``text`` not written in the target language's scripts."""
    allowed = target_scripts(target)
    return [w for s, w in language_words(text, target) if s not in allowed]


def chain_of_thought(text: str) -> str:
    """The text inside ``<think>...</think>`` (see the module docstring for the open cases)."""
    start = text.find(THINK)
    start = 0 if start < 0 else start + len(THINK)
    end = text.find(END_THINK, start)
    if end < 0:
        end = text.find(ANSWER, start)
    return text[start:] if end < 0 else text[start:end]


def target_fraction(text: str, target: str = "en") -> float | None:
    """Fraction of the language words of ``text`` written in the target's scripts; None if none."""
    words = language_words(text, target)
    if not words:
        return None
    allowed = target_scripts(target)
    return sum(s in allowed for s, _ in words) / len(words)
