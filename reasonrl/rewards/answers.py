"""Answer checkers: math (math-verify), exact, numeric, multiple choice, reasoning-gym.

Each is `(completion, example, **options) -> float | None`: 1.0 correct, 0.0 incorrect or no
answer found, None when the example itself cannot be scored (no usable gold).
"""

from __future__ import annotations

import functools
import logging
from fractions import Fraction

from reasonrl.rewards.extract import extract_answer, strip_math_delimiters


def _extract(completion: str, example: dict, extract) -> str | None:
    """The verifier's `extract` option, else the task's meta["extract"], else the default."""
    return extract_answer(completion, extract or (example.get("meta") or {}).get("extract"))


def _gold(example: dict) -> str | None:
    gold = example.get("answer")
    if gold is None:
        return None
    gold = str(gold).strip()
    return gold or None


# ----------------------------------------------------------------------------- math-verify

@functools.lru_cache(maxsize=8192)
def _parse_math(text: str) -> tuple:
    """math-verify parse of one answer, wrapped in \\boxed{} so the whole string is taken.

    The signal-based timeout is off (it only works on the main thread and clobbers SIGALRM);
    the reward runtime times the call out from outside instead. Cached: golds repeat G times
    per group, and identical predictions are common.
    """
    from math_verify import parse

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    body = strip_math_delimiters(text)
    return tuple(parse("\\boxed{" + body + "}", parsing_timeout=None))


def math_accuracy(completion: str, example: dict, extract: str | None = None) -> float | None:
    """1.0 when math-verify finds the extracted answer equivalent to the gold."""
    from math_verify import verify

    gold = _gold(example)
    if gold is None:
        return None
    gold_parsed = _parse_math(gold)
    if not gold_parsed:
        return None
    pred = _extract(completion, example, extract)
    if pred is None:
        return 0.0
    pred_parsed = _parse_math(pred)
    if not pred_parsed:
        return 0.0
    # argument order matters: verify(gold, prediction)
    return 1.0 if verify(list(gold_parsed), list(pred_parsed), timeout_seconds=None) else 0.0


# ----------------------------------------------------------------------------- exact / numeric

def normalize_text(text: str, case_sensitive: bool = False) -> str:
    """Delimiters, \\text{}, surrounding punctuation and repeated whitespace removed."""
    s = strip_math_delimiters(text)
    if s.startswith("\\text{") and s.endswith("}"):
        s = s[len("\\text{"):-1]
    s = " ".join(s.split()).strip(" .")
    return s if case_sensitive else s.lower()


def exact_match(completion: str, example: dict, extract: str | None = None,
                case_sensitive: bool = False) -> float | None:
    """1.0 when the normalised extracted answer equals the normalised gold."""
    gold = _gold(example)
    if gold is None:
        return None
    pred = _extract(completion, example, extract)
    if pred is None:
        return 0.0
    return float(normalize_text(pred, case_sensitive) == normalize_text(gold, case_sensitive))


def parse_number(text: str) -> Fraction | None:
    """Integers, decimals, a/b, \\frac{a}{b}, with $, commas, % and \\! tolerated."""
    s = strip_math_delimiters(text)
    for junk in ("\\$", "$", "\\!", "\\,", ",", "\\%", "%", " "):
        s = s.replace(junk, "")
    if s.startswith("\\frac{") or s.startswith("\\dfrac{"):
        num, _, den = s.split("{", 1)[1].partition("}{")
        s = f"{num}/{den.rstrip('}')}"
    if len(s) > 200:  # keeps Fraction's parse bounded on adversarial digit strings
        return None
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def numeric_match(completion: str, example: dict, extract: str | None = None,
                  rel_tol: float = 1e-6) -> float | None:
    """1.0 when the extracted answer is a number within rel_tol of the numeric gold."""
    gold_text = _gold(example)
    gold = None if gold_text is None else parse_number(gold_text)
    if gold is None:
        return None
    pred_text = _extract(completion, example, extract)
    pred = None if pred_text is None else parse_number(pred_text)
    if pred is None:
        return 0.0
    return float(abs(pred - gold) <= rel_tol * max(abs(gold), 1))


# ----------------------------------------------------------------------------- multiple choice

def _letter(text: str, n_choices: int) -> str | None:
    """The first standalone capital letter among the first n_choices letters: "(B)", "B.",
    "\\text{B}", "Option B" all give B."""
    valid = {chr(ord("A") + i) for i in range(n_choices)}
    token = []
    for ch in text + " ":
        if ch.isalnum():
            token.append(ch)
            continue
        word = "".join(token)
        token = []
        if word in valid:
            return word
    return None


def choice_match(completion: str, example: dict, extract: str | None = None) -> float | None:
    """GPQA style: the gold is a letter (the task shuffled the options and set the letter);
    the prediction is a letter or the exact text of one option."""
    choices = list(example.get("choices") or [])
    gold = _gold(example)
    n = max(len(choices), 4)
    gold_letter = _letter(gold, n) if gold and len(gold) <= 4 else None
    if gold_letter is None and gold in choices:
        gold_letter = chr(ord("A") + choices.index(gold))
    if gold_letter is None:
        return None
    pred = _extract(completion, example, extract)
    if pred is None:
        return 0.0
    by_text = {normalize_text(c): chr(ord("A") + i) for i, c in enumerate(choices)}
    pred_letter = by_text.get(normalize_text(pred)) or _letter(strip_math_delimiters(pred), n)
    return float(pred_letter == gold_letter)


# ----------------------------------------------------------------------------- reasoning-gym

@functools.lru_cache(maxsize=256)
def _rg_scorer(name: str):
    import reasoning_gym

    return reasoning_gym.get_score_answer_fn(name)


def reasoning_gym_score(completion: str, example: dict, extract: str | None = None) -> float | None:
    """The dataset's own score_answer on the extracted answer (meta.rg = the entry dict,
    meta.rg_dataset = the dataset name; falls back to the entry's metadata.source_dataset)."""
    meta = example.get("meta") or {}
    entry = meta.get("rg")
    if not isinstance(entry, dict):
        return None
    name = meta.get("rg_dataset") or (entry.get("metadata") or {}).get("source_dataset")
    if not name:
        return None
    pred = _extract(completion, example, extract)
    if pred is None:
        return 0.0
    return float(_rg_scorer(name)(pred, entry))


def countdown_match(completion: str, example: dict, extract: str | None = None) -> float | None:
    """The countdown task's checker on the extracted expression (length-capped arithmetic parse)."""
    from reasonrl.tasks.countdown import countdown_score

    expression = _extract(completion, example, extract)
    return 0.0 if expression is None else countdown_score(expression, example)


def per_example(completion: str, example: dict, extract: str | None = None) -> float | None:
    """The in-process checker named by the example's meta["verifier"] (a task mixture's members
    each set their own). None (unscorable) when it names none, or one that needs the worker pool."""
    from reasonrl.rewards.base import BUILTINS

    name = (example.get("meta") or {}).get("verifier")
    if name == "per_example" or not BUILTINS.get(name, ("", False))[1]:
        return None
    return _member_checker(name, extract)(completion, example)


@functools.lru_cache(maxsize=64)
def _member_checker(name: str, extract: str | None):
    # built once per (checker, extract): get_verifier inspects signatures, and this runs per completion
    from reasonrl.rewards.base import get_verifier

    return get_verifier(name, **({"extract": extract} if extract else {}))
