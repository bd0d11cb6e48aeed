"""The evaluation library behind `reasonrl eval`: generate k samples per problem, extract the
answers, score them with the task's verifier, and aggregate per-problem scores into R1's metrics.

    texts, lengths = generate_completions(policy, tokenizer, prompts, k=8, temperature=0.6, ...)
    scored = score_completions(runtime, task, examples, texts)            # lenient extraction
    strict = score_completions(runtime, task, examples, texts, extract="answer_tag")
    scores = problem_scores(scored, lengths)                              # per-problem vectors
    summary(scores, n_boot=1000, seed=0)                                   # pass@1, pass@k, cons@k, CIs

Scoring needs no model: feed completions straight into `score_completions` (the tests do, with
gold solutions). Importing this module does not import torch.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from reasonrl.eval.metrics import bootstrap_ci, majority_vote, pass_at_k

# The answer slot a prompt format asks for: R1's math prompt says "within \boxed{}", the R1(-Zero)
# templates and system message say <answer> </answer>. Strict extraction reads only that slot.
STRICT_SLOTS = {"r1_math": "boxed"}
DEFAULT_STRICT_SLOT = "answer_tag"
# meta keys that identify or configure a problem rather than group it
NOT_CATEGORIES = frozenset({"source", "verifier", "extract", "unique_id", "url", "id", "rg", "rg_dataset"})
MAX_CATEGORY_VALUES = 50


def strict_slot(prompt_format: str) -> str:
    """The extractor strict mode uses for a prompt format (see STRICT_SLOTS)."""
    return STRICT_SLOTS.get(prompt_format, DEFAULT_STRICT_SLOT)


@dataclass
class Scored:
    """Verdicts and extracted answers, one row per problem, one entry per sample."""

    correct: list[list[float]]
    answers: list[list[str | None]]


def extract(text: str, verifier: str, example: dict, order: str | None = None) -> str | None:
    """The answer a verifier would read: the last python block for `code`, else `extract_answer`
    with `order` (None: the example's meta["extract"], else the default order)."""
    from reasonrl.rewards.extract import extract_answer, last_code_block

    if verifier == "code":
        return last_code_block(text)
    return extract_answer(text, order or (example.get("meta") or {}).get("extract"))


def takes_extract(verifier: str) -> bool:
    """Whether the verifier has an `extract` option (the answer checkers do; code, style and most
    user verifiers do not, and score the same in both modes)."""
    from reasonrl.rewards.base import BUILTINS, load_function

    target = BUILTINS[verifier][0] if verifier in BUILTINS else verifier
    try:
        return "extract" in inspect.signature(load_function(target)).parameters
    except (ImportError, AttributeError, ValueError, TypeError):
        return False


def score_completions(runtime, task, examples: Sequence[dict], texts: Sequence[Sequence[str]],
                      extract_order: str | None = None) -> Scored:
    """Score `texts[i][j]` (sample j of problem i) with the task's verifier through `runtime`
    (a RewardRuntime: cheap checkers in-process, math-verify / code in its worker pool).
    `extract_order` (e.g. "boxed"): strict mode, only that answer slot counts."""
    verifier = task.verifier
    strict = extract_order is not None and takes_extract(verifier)
    order = extract_order if strict else None
    answers = [[extract(t, verifier, ex, order) for t in row] for ex, row in zip(examples, texts)]
    # the built-in checkers read exactly this answer and give 0 without one: only the rest is scored
    # (user verifiers extract on their own, so all of their completions are)
    known = verifier == "code" or takes_extract(verifier)
    todo = [(i, j) for i, row in enumerate(texts) for j in range(len(row)) if not known or answers[i][j] is not None]
    correct = [[0.0] * len(row) for row in texts]
    if todo:
        spec = {verifier: {"weight": 1.0, **({"extract": extract_order} if strict else {})}}
        result = runtime.score([texts[i][j] for i, j in todo], [examples[i] for i, _ in todo], spec)
        for (i, j), value in zip(todo, result.components[verifier]):
            correct[i][j] = float(value or 0.0)
    return Scored(correct, answers)


def vote_key(answer: str | None) -> str | None:
    """What majority voting compares: the answer without math delimiters and runs of whitespace."""
    from reasonrl.rewards.extract import strip_math_delimiters

    return None if answer is None else " ".join(strip_math_delimiters(answer).split())


def consensus(correct: Sequence[float], answers: Sequence[str | None], k: int | None = None) -> float:
    """cons@k of one problem: the majority vote over the first k answers (ties: the first seen,
    None never wins), judged by the verdict of the first sample that gave the voted answer (so
    equivalence is the verifier's, not string equality with the gold)."""
    keys = [vote_key(a) for a in answers[:k]]
    voted = majority_vote(keys)
    if voted is None:
        return 0.0
    return float(correct[keys.index(voted)])


def problem_scores(scored: Scored, lengths: Sequence[Sequence[int]] | None = None) -> dict[str, list[float]]:
    """Per-problem vectors: `pass@1` (fraction correct), `pass@j` for j in 1..n (unbiased),
    `cons@k`, `format_failure` (fraction without an extractable answer) and `length`."""
    n = min(len(row) for row in scored.correct)
    out: dict[str, list[float]] = {"pass@1": [sum(r) / len(r) for r in scored.correct]}
    for j in range(2, n + 1):
        out[f"pass@{j}"] = [pass_at_k(len(r), sum(1 for x in r if x), j) for r in scored.correct]
    out["cons@k"] = [consensus(c, a) for c, a in zip(scored.correct, scored.answers)]
    out["format_failure"] = [sum(a is None for a in row) / len(row) for row in scored.answers]
    if lengths is not None:
        out["length"] = [sum(row) / len(row) for row in lengths]
    return out


def mean_over(runs: Sequence[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per-problem vectors averaged over runs (sampling seeds): problems stay the resampling unit."""
    return {key: [sum(vals) / len(vals) for vals in zip(*(r[key] for r in runs))] for key in runs[0]}


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def summary(scores: dict[str, list[float]], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Metrics of per-problem vectors: `pass@1`, `pass@k` {"1": .., "n": ..}, `cons@k`,
    `format_failure_rate`, `mean_length` (when lengths are known) and `ci95` (bootstrap over
    problems) for pass@1, pass@n and cons@k."""
    ks = sorted(int(key.split("@")[1]) for key in scores if key.startswith("pass@"))
    out: dict[str, Any] = {"pass@1": _mean(scores["pass@1"]),
                           "pass@k": {str(j): _mean(scores[f"pass@{j}"]) for j in ks},
                           "cons@k": _mean(scores["cons@k"]),
                           "format_failure_rate": _mean(scores["format_failure"])}
    if "length" in scores:
        out["mean_length"] = _mean(scores["length"])
    ci = {"pass@1": scores["pass@1"], f"pass@{ks[-1]}": scores[f"pass@{ks[-1]}"], "cons@k": scores["cons@k"]}
    out["ci95"] = {name: list(bootstrap_ci(v, n_boot=n_boot, seed=seed)) for name, v in ci.items()}
    return out


def generate_completions(policy, tokenizer, prompts: Sequence[str], *, k: int, temperature: float, top_p: float,
                         max_new_tokens: int, seed: int, batch_size: int = 16, stop_strings: Sequence[str] = (),
                         on_batch: Callable[[int], None] | None = None) -> tuple[list[list[str]], list[list[int]]]:
    """`k` completions per prompt (temperature 0: greedy) and their lengths in tokens. Each batch
    draws from its own seed (seed, batch start), so results do not depend on what ran before."""
    import torch

    from reasonrl.sampler import generate

    texts: list[list[str]] = []
    lengths: list[list[int]] = []
    was_training = policy.training
    policy.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(prompts), batch_size):
                chunk = list(prompts[start:start + batch_size])
                out = generate(policy, chunk, n=k, max_new_tokens=max_new_tokens, temperature=temperature,
                               top_p=top_p, seed=seed * 1_000_003 + start, tokenizer=tokenizer,
                               stop_strings=list(stop_strings) or None)
                texts += [out.texts[i * k:(i + 1) * k] for i in range(len(chunk))]
                lengths += [out.completion_lengths[i * k:(i + 1) * k] for i in range(len(chunk))]
                if on_batch is not None:
                    on_batch(len(chunk))
    finally:
        policy.train(was_training)
    return texts, lengths


def category_keys(examples: Sequence[dict]) -> list[str]:
    """The meta keys that group problems (MATH-500 `subject`, `level`; GPQA `domain`): scalar
    values, at most MAX_CATEGORY_VALUES distinct ones, not an identifier (NOT_CATEGORIES)."""
    keys: dict[str, set] = {}
    for ex in examples:
        for key, value in (ex.get("meta") or {}).items():
            if key not in NOT_CATEGORIES and isinstance(value, (str, int, bool)):
                keys.setdefault(key, set()).add(str(value))
    return [k for k, values in keys.items() if len(values) <= MAX_CATEGORY_VALUES
            and all(k in (ex.get("meta") or {}) for ex in examples)]


def example_categories(task, examples: Sequence[dict], keys: Sequence[str] | None = None) -> list[dict[str, str]]:
    """Per example, category name -> value: the data's own meta keys (`keys`, None: detected)
    plus the task's declared `categories(example)` when it has them (prefixed `task:` where a
    name collides with a meta key)."""
    keys = category_keys(examples) if keys is None else list(keys)
    declared = getattr(task, "categories", None)
    rows = []
    for ex in examples:
        meta = ex.get("meta") or {}
        row = {k: str(meta[k]) for k in keys if k in meta}
        for name, value in ((declared(ex) if callable(declared) else None) or {}).items():
            row[f"task:{name}" if name in row else name] = str(value)
        rows.append(row)
    return rows


def breakdown(categories: Sequence[dict[str, str]], scores: dict[str, list[float]]) -> dict[str, dict]:
    """category -> value -> {"pass@1", "cons@k", "n"} over the problems with that value."""
    out: dict[str, dict] = {}
    for i, row in enumerate(categories):
        for name, value in row.items():
            out.setdefault(name, {}).setdefault(value, []).append(i)
    return {name: {value: {"pass@1": _mean([scores["pass@1"][i] for i in idx]),
                           "cons@k": _mean([scores["cons@k"][i] for i in idx]), "n": len(idx)}
                   for value, idx in sorted(groups.items())}
            for name, groups in out.items()}


def process_checks(task, examples: Sequence[dict], texts: Sequence[str], correct: Sequence[float]) -> dict | None:
    """`cot_valid_rate` and `right_answer_wrong_reasoning` when the task has a `step_check`
    (flat lists: one entry per completion); None otherwise."""
    step_check = getattr(task, "step_check", None)
    if not callable(step_check):
        return None
    try:
        from reasonrl.tasks.process import process_stats
    except ImportError:
        process_stats = _process_stats
    return process_stats(list(texts), list(examples), [bool(c) for c in correct], step_check)


def _process_stats(completions, examples, correct, step_check) -> dict:
    # the same definitions as reasonrl.tasks.process, for versions without that module
    checks = [step_check(t, ex) for t, ex in zip(completions, examples)]
    judged = [c for c in checks if c is not None]
    right = [c for c, ok in zip(checks, correct) if ok and c is not None]
    return {"cot_valid_rate": sum(judged) / len(judged) if judged else None,
            "right_answer_wrong_reasoning": sum(not c for c in right) / len(right) if right else None}
