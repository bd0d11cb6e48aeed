"""Weighted reward composition and the reusable runtime the trainer holds.

    with RewardRuntime({"accuracy": 1.0, "format": 0.5}, timeout_s=10) as rt:
        rewards, metrics = rt.score(completions, examples)          # every step, pool reused
        result = rt.score(completions, examples); result.components  # per-item values

Spec values: a weight, or a dict with `weight` (default 1.0), optional `timeout_s`, and the
verifier's options (for `accuracy`: `default`, the verifier used when an example's
meta["verifier"] is absent; default "math").
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from reasonrl.rewards.base import Verifier, get_verifier
from reasonrl.rewards.worker import evaluate

WARM_EXAMPLES = {
    "math": ("\\boxed{\\frac{1}{2}}", {"answer": "0.5"}),
}


@dataclass(frozen=True)
class Component:
    name: str
    weight: float
    verifier: Verifier | None  # None: "accuracy", resolved per example
    timeout_s: float | None = None
    default: str = "math"


def parse_spec(spec: dict) -> list[Component]:
    """{"accuracy": 1.0, "format": {"weight": 0.5, "mode": "soft"}, "pkg.mod:fn": 0.2}."""
    components = []
    for name, value in spec.items():
        options = dict(value) if isinstance(value, dict) else {"weight": value}
        weight = float(options.pop("weight", 1.0))
        timeout_s = options.pop("timeout_s", None)
        if name == "accuracy":
            default = options.pop("default", "math")
            if options:
                raise TypeError(f"accuracy takes only weight, timeout_s, default; got {sorted(options)}")
            components.append(Component(name, weight, None, timeout_s, default))
        else:
            components.append(Component(name, weight, get_verifier(name, **options), timeout_s))
    return components


@dataclass
class ScoreResult:
    """Unpacks as `rewards, metrics`; also carries per-item components, statuses, reasons."""

    rewards: list[float]
    metrics: dict[str, float]
    components: dict[str, list] = field(default_factory=dict)
    status: dict[str, list] = field(default_factory=dict)
    reasons: dict[str, list] = field(default_factory=dict)

    def __iter__(self):
        return iter((self.rewards, self.metrics))

    def item(self, i: int) -> dict:
        """What samples.jsonl records for row i."""
        return {"reward": self.rewards[i],
                "rewards": {name: values[i] for name, values in self.components.items()},
                "reward_status": {name: s[i] for name, s in self.status.items() if s[i] != "ok"}}


def component_metrics(name: str, values: list, status: list) -> dict[str, float]:
    n = max(1, len(status))
    scored = [v for v, s in zip(values, status) if s != "none"]
    out = {f"reward/{name}/{kind}_frac": sum(s == kind for s in status) / n
           for kind in ("none", "timeout", "error")}
    if scored:
        out[f"reward/{name}"] = sum(scored) / len(scored)
    return out


def total_metrics(rewards: list[float]) -> dict[str, float]:
    if not rewards:
        return {}
    mean = sum(rewards) / len(rewards)
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards))
    return {"reward/mean": mean, "reward/std": std}


def default_workers() -> int:
    """Usable cores (the affinity mask where the OS has one), at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))


def with_lengths(examples: list[dict], lengths: list[int] | None) -> list[dict]:
    """Shallow copies carrying `completion_tokens` (the overlong verifier's |y|)."""
    if lengths is None:
        return list(examples)
    if len(lengths) != len(examples):
        raise ValueError(f"{len(lengths)} completion_lengths for {len(examples)} examples")
    return [{**ex, "completion_tokens": int(n)} for ex, n in zip(examples, lengths)]


class RewardRuntime:
    """Holds the worker pool across steps; close() (or `with`) ends it. The pool starts on the
    first call that needs it: a spec of in-process verifiers only never starts one."""

    def __init__(self, spec: dict | None = None, timeout_s: float = 10.0,
                 num_workers: int | None = None, failure_value: float = 0.0,
                 start_method: str = "forkserver"):
        if start_method == "fork":
            raise ValueError("reward workers must not be forked from the trainer (torch threads); "
                             "use 'forkserver' or 'spawn'")
        self.spec = spec
        self.timeout_s = float(timeout_s)
        self.num_workers = num_workers or default_workers()
        self.failure_value = float(failure_value)
        self.start_method = start_method
        self._pool = None
        self._parsed: dict[str, list[Component]] = {}
        self._accuracy: dict[str, Verifier] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def components(self, spec: dict | None = None) -> list[Component]:
        spec = self.spec if spec is None else spec
        if not spec:
            raise ValueError("no reward spec: pass e.g. {'accuracy': 1.0, 'format': 0.5}")
        key = repr(sorted(spec.items(), key=lambda kv: kv[0]))
        if key not in self._parsed:
            self._parsed[key] = parse_spec(spec)
        return self._parsed[key]

    def _verifier(self, component: Component, example: dict) -> Verifier:
        if component.verifier is not None:
            return component.verifier
        name = (example.get("meta") or {}).get("verifier") or component.default
        if name not in self._accuracy:
            self._accuracy[name] = get_verifier(name)
        return self._accuracy[name]

    def _timeout(self, component: Component, verifier: Verifier, example: dict, call_s) -> float:
        timeout = component.timeout_s or call_s or self.timeout_s
        if verifier.name == "code":  # one budget for all tests, enforced inside the sandbox
            timeout = max(timeout, float(verifier.options.get("total_s", 10.0)) + 5.0)
        return float(timeout)

    def _pool_for(self):
        if self._pool is None:
            from reasonrl.rewards.pool import WorkerPool

            warm = [(get_verifier("math"), *WARM_EXAMPLES["math"])]
            self._pool = WorkerPool(self.num_workers, warm, self.start_method)
        return self._pool

    def score(self, completions: list[str], examples: list[dict], spec: dict | None = None,
              timeout_s: float | None = None,
              completion_lengths: list[int] | None = None) -> ScoreResult:
        """Weighted sum of the spec's verifiers for each (completion, example) pair."""
        if len(completions) != len(examples):
            raise ValueError(f"{len(completions)} completions for {len(examples)} examples")
        components = self.components(spec)
        examples = with_lengths(examples, completion_lengths)
        outcomes: dict[tuple[str, int], tuple] = {}
        jobs = []
        for i, (text, example) in enumerate(zip(completions, examples)):
            for comp in components:
                try:
                    verifier = self._verifier(comp, example)
                except Exception as exc:  # unknown name, bad import, sandbox unavailable ...
                    outcomes[(comp.name, i)] = ("error", None, f"{type(exc).__name__}: {exc}")
                    continue
                if verifier.in_process:
                    outcomes[(comp.name, i)] = evaluate(verifier, text, example)
                else:
                    timeout = self._timeout(comp, verifier, example, timeout_s)
                    jobs.append(((comp.name, i), timeout, (verifier, text, example)))
        if jobs:
            outcomes.update(self._pool_for().run(jobs))
        return self._assemble(components, outcomes, len(completions))

    def _assemble(self, components, outcomes, n: int) -> ScoreResult:
        result = ScoreResult(rewards=[0.0] * n, metrics={})
        for comp in components:
            statuses = [outcomes[(comp.name, i)][0] for i in range(n)]
            values = [self._value(outcomes[(comp.name, i)]) for i in range(n)]
            result.components[comp.name] = values
            result.status[comp.name] = statuses
            result.reasons[comp.name] = [outcomes[(comp.name, i)][2] for i in range(n)]
            result.metrics.update(component_metrics(comp.name, values, statuses))
            for i, value in enumerate(values):
                result.rewards[i] += comp.weight * (value or 0.0)  # None adds nothing
        result.metrics.update(total_metrics(result.rewards))
        return result

    def _value(self, outcome: tuple) -> float | None:
        status, value, _ = outcome
        return self.failure_value if status in ("timeout", "error") else value


def score(completions: list[str], examples: list[dict], spec: dict,
          timeout_s: float | None = None, **options) -> ScoreResult:
    """One-shot scoring (starts and ends a pool if the spec needs one). In a training loop hold
    a RewardRuntime instead, so the pool's start-up is paid once."""
    with RewardRuntime(spec, timeout_s=timeout_s or 10.0, **options) as runtime:
        return runtime.score(completions, examples)
