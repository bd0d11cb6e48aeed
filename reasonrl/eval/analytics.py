"""Behaviour analytics of completions (pure Python, no torch): reflection words, language mixing,
response lengths. These are the "aha moment" curves of R1 section 2.2.4 and Dr. GRPO.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
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


# ------------------------------------------------------------------------------------------------
# analytics over a run: metrics.jsonl rows and samples.jsonl rows (plain dicts)

ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
PROCESS_KEYS: tuple[str, ...] = (
    "process/cot_valid_rate", "process/right_answer_wrong_reasoning",
    "eval/cot_valid_rate", "eval/right_answer_wrong_reasoning",
)


def as_number(value) -> float | None:
    """A finite float, or None for anything else (missing keys, null, strings, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def series(rows: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of ``key`` over metric rows that have both a step and a finite value."""
    steps, values = [], []
    for row in rows:
        step, value = as_number(row.get("step")), as_number(row.get(key))
        if step is not None and value is not None:
            steps.append(step)
            values.append(value)
    return steps, values


def length_curves(rows: Sequence[dict]) -> dict[str, tuple[list[float], list[float]]]:
    """Response length over training: mean, and mean of correct / incorrect responses (the
    keys that were logged; R1's length grows with training, Dr. GRPO's correct one does not)."""
    keys = ("length/mean", "length/correct", "length/incorrect")
    return {k: s for k in keys if (s := series(rows, k))[0]}


def process_curves(rows: Sequence[dict]) -> dict[str, tuple[list[float], list[float]]]:
    """The process-check rates (chain-of-thought validity, right answer with wrong reasoning)
    that were logged."""
    return {k: s for k in PROCESS_KEYS if (s := series(rows, k))[0]}


def training_samples(samples: Sequence[dict]) -> list[dict]:
    """samples.jsonl rows written by training (a step and a completion); the evaluation stage's
    rows (model, verdict, ...) share the file name and are left out."""
    return [r for r in samples if as_number(r.get("step")) is not None and isinstance(r.get("completion"), str)]


def _by_step(samples: Sequence[dict]) -> dict[float, list[dict]]:
    groups: dict[float, list[dict]] = {}
    for row in training_samples(samples):
        groups.setdefault(float(row["step"]), []).append(row)
    return dict(sorted(groups.items()))


def reflection_by_step(samples: Sequence[dict], words: Sequence[str] = R1_REFLECTION_WORDS
                       ) -> tuple[list[float], list[float]]:
    """(steps, reflection rate) recomputed from the sampled completions with any word list, so the
    strict Dr. GRPO pool can be plotted next to R1's even though training logs only R1's."""
    groups = _by_step(samples)
    return list(groups), [reflection_rate([r["completion"] for r in rows], words) for rows in groups.values()]


def language_mixing_by_step(samples: Sequence[dict], target: str = "en", prefill: str = ""
                            ) -> tuple[list[float], list[float]]:
    """(steps, language-mixing rate) of the sampled completions."""
    groups = _by_step(samples)
    return list(groups), [language_mixing_rate([r["completion"] for r in rows], target, prefill=prefill)
                          for rows in groups.values()]


def format_error(row: dict) -> bool:
    """A sampled completion is a format error when its ``format`` reward is 0 or, without a format
    reward, when it has no complete ``<answer>...</answer>`` span."""
    fmt = as_number((row.get("rewards") or {}).get("format"))
    if fmt is not None:
        return fmt <= 0
    text = row.get("completion") or ""
    start = text.find(ANSWER_OPEN)
    return start < 0 or text.find(ANSWER_CLOSE, start) < 0


def format_error_by_step(samples: Sequence[dict]) -> tuple[list[float], list[float]]:
    """(steps, fraction of sampled completions that are format errors)."""
    groups = _by_step(samples)
    return list(groups), [sum(map(format_error, rows)) / len(rows) for rows in groups.values()]


def solved(row: dict) -> bool:
    """Whether a sampled completion was correct: its ``accuracy`` reward > 0, else its reward > 0."""
    acc = as_number((row.get("rewards") or {}).get("accuracy"))
    value = acc if acc is not None else as_number(row.get("reward"))
    return value is not None and value > 0


def solve_rate_history(samples: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
    """For each prompt id: (step, accuracy of its group) every time it was sampled, step order."""
    groups: dict[tuple[str, float], list[bool]] = {}
    for row in training_samples(samples):
        groups.setdefault((str(row.get("id")), float(row["step"])), []).append(solved(row))
    history: dict[str, list[tuple[float, float]]] = {}
    for (pid, step), flags in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        history.setdefault(pid, []).append((step, sum(flags) / len(flags)))
    return history


def solve_rate_summary(history: dict[str, list[tuple[float, float]]]) -> dict[str, int]:
    """Counts of prompts by how their solve rate moved between their first and last sampling."""
    out = {"prompts": len(history), "sampled_twice": 0, "learned": 0, "regressed": 0,
           "always_solved": 0, "never_solved": 0}
    for points in history.values():
        rates = [r for _, r in points]
        out["always_solved"] += all(r >= 1 for r in rates)
        out["never_solved"] += all(r <= 0 for r in rates)
        if len(rates) > 1:
            out["sampled_twice"] += 1
            out["learned"] += rates[-1] > rates[0]
            out["regressed"] += rates[-1] < rates[0]
    return out


# ------------------------------------------------------------------------------------------------
# the "aha" detector


@dataclass(frozen=True)
class AhaResult:
    """What :func:`detect_aha` found; ``status`` is one of ``aha``, ``none``, ``vacuous``,
    ``reflection_without_accuracy`` or ``no_data``, and ``verdict`` says it in plain words."""

    status: str
    verdict: str
    step: float | None = None
    reflection_early: float | None = None
    reflection_at: float | None = None
    reflection_peak: float | None = None
    accuracy_early: float | None = None
    accuracy_at: float | None = None
    threshold: float | None = None
    accuracy_key: str | None = None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _first_sustained(flags: Sequence[bool], start: int, sustain: int) -> int | None:
    """First index >= start from which ``flags`` hold for ``sustain`` entries (or to the end)."""
    for i in range(start, len(flags)):
        if all(flags[i:i + max(1, sustain)]):
            return i
    return None


def detect_aha(rows: Sequence[dict], *, factor: float = 3.0, early_frac: float = 0.1, floor: float = 0.02,
               vacuous_max: float = 0.01, sustain: int = 2, reflection_key: str = "reflection_rate",
               accuracy_keys: Sequence[str] = ("accuracy", "reward/accuracy")) -> AhaResult:
    """The first step where the reflection rate rises to ``factor`` x its early level while accuracy
    is above its early level, both holding for ``sustain`` consecutive logged steps.

    Early level: the mean over the first ``early_frac`` of the logged steps (at least one), with a
    ``floor`` so that a start at ~0 does not make any single reflective response a "rise". A run
    whose reflection rate never exceeds ``vacuous_max`` is reported as vacuous: there was nothing
    for RL to amplify. A rise without better accuracy is reported as such, not as an aha moment.
    """
    points = [r for r in rows if as_number(r.get("step")) is not None and as_number(r.get(reflection_key)) is not None]
    if not points:
        return AhaResult("no_data", f"no {reflection_key} was logged: the aha detector needs RL metrics")
    refl = [float(r[reflection_key]) for r in points]
    peak = max(refl)
    if peak <= vacuous_max:
        return AhaResult("vacuous", f"no reflection words appear at any step (peak rate {peak:.3f}): the policy and "
                         "its training data have no self-check vocabulary for RL to amplify", reflection_peak=peak)
    acc_key = next((k for k in accuracy_keys if any(as_number(r.get(k)) is not None for r in points)), None)
    acc = [as_number(r.get(acc_key)) if acc_key else None for r in points]
    n_early = max(1, math.ceil(early_frac * len(points)))
    refl_early = sum(refl[:n_early]) / n_early
    acc_early = _mean([a for a in acc[:n_early] if a is not None])
    threshold = factor * max(refl_early, floor)
    rising = [r >= threshold for r in refl]
    # a tolerance, so that float noise in an unchanged accuracy does not count as a rise
    better = [a is not None and acc_early is not None and a > acc_early + 1e-9 for a in acc]
    common = dict(reflection_early=refl_early, reflection_peak=peak, accuracy_early=acc_early,
                  threshold=threshold, accuracy_key=acc_key)
    i = _first_sustained([r and b for r, b in zip(rising, better)], n_early, sustain)
    if i is not None:
        step = float(points[i]["step"])
        return AhaResult("aha", f"aha moment at step {step:g}: the reflection rate rose to {refl[i]:.3f} "
                         f"(>= {factor:g}x its early level {refl_early:.3f}) while {acc_key} rose from "
                         f"{acc_early:.3f} to {acc[i]:.3f}", step=step, reflection_at=refl[i], accuracy_at=acc[i],
                         **common)
    i = _first_sustained(rising, n_early, sustain)
    if i is not None:
        step = float(points[i]["step"])
        why = (f"{acc_key} did not rise above its early level {acc_early:.3f} ({acc[i]:.3f} there)"
               if acc_key and acc_early is not None else "no accuracy was logged to show better answers")
        return AhaResult("reflection_without_accuracy", f"reflection rose without accuracy: at step {step:g} the "
                         f"reflection rate reached {refl[i]:.3f} (>= {factor:g}x its early level {refl_early:.3f}) "
                         f"but {why}: more self-check words, not better reasoning", step=step,
                         reflection_at=refl[i], accuracy_at=acc[i], **common)
    return AhaResult("none", f"no aha moment: the reflection rate peaked at {peak:.3f}, short of {threshold:.3f} "
                     f"({factor:g}x its early level {refl_early:.3f}, floor {floor:g}) for {sustain} steps in a row",
                     **common)
