"""Reward throughput: 10,000 math completions and 200 code completions with the default pool.

    python benchmarks/bench_rewards.py [--math N] [--code N] [--workers W]

Math completions are built from MATH-500 and GSM8K golds, 8 per prompt as in a GRPO group
(half correct in varied wrappings, half wrong). Code completions solve small stdin/stdout and
assert-style problems, half of them correctly; each runs in the sandbox (skipped with a note when
the sandbox is unavailable). Prints one JSON line per measurement; docs/rewards.md records them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reasonrl.rewards import RewardRuntime  # noqa: E402
from reasonrl.rewards.sandbox import sandbox_check  # noqa: E402
from tests.rewards.qa import load_gold  # noqa: E402


def math_batch(n: int) -> tuple[list[str], list[dict]]:
    golds = load_gold("math500.jsonl") + load_gold("gsm8k_test.jsonl")
    wrappers = ["<think>work</think>\n<answer>{}</answer>", "so the answer is $\\boxed{{{}}}$.",
                "<think>a</think><answer>$\\boxed{{{}}}$</answer>", "The answer is {}"]
    texts, examples = [], []
    for i in range(n):
        gold = golds[(i // 8) % len(golds)]
        k = i % 8
        answer = gold if k < 4 else (f"{gold}+{k}" if k % 2 else str(k * 7 + i % 13))
        texts.append(wrappers[k % 4].format(answer))
        examples.append({"answer": gold})
    return texts, examples


PROGRAMS = {
    "correct": "import sys\ndef solve(a, b):\n    return a + b\nd = sys.stdin.read().split()\n"
               "if d:\n    print(solve(int(d[0]), int(d[1])))\n",
    "wrong": "import sys\ndef solve(a, b):\n    return a * b\nd = sys.stdin.read().split()\n"
             "if d:\n    print(solve(int(d[0]), int(d[1])))\n",
}


def code_batch(n: int) -> tuple[list[str], list[dict]]:
    tests = [{"input": "2 3\n", "output": "5"}, {"input": "10 -4\n", "output": "6"},
             {"assert": "assert solve(2, 2) == 4"}]
    texts, examples = [], []
    for i in range(n):
        program = PROGRAMS["correct" if i % 2 == 0 else "wrong"]
        texts.append(f"<think>add</think>\n```python\n{program}```")
        examples.append({"tests": tests})
    return texts, examples


def measure(runtime: RewardRuntime, texts, examples, spec) -> dict:
    start = time.perf_counter()
    result = runtime.score(texts, examples, spec=spec)
    elapsed = time.perf_counter() - start
    return {"n": len(texts), "seconds": round(elapsed, 2),
            "rewards_per_s": round(len(texts) / elapsed, 1),
            "reward_mean": round(result.metrics["reward/mean"], 4),
            "timeout_frac": result.metrics.get(f"reward/{next(iter(spec))}/timeout_frac")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--math", type=int, default=10_000)
    parser.add_argument("--code", type=int, default=200)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    with RewardRuntime(timeout_s=10.0, num_workers=args.workers) as runtime:
        start = time.perf_counter()
        runtime.score(["\\boxed{1}"], [{"answer": "1"}], spec={"math": 1.0})
        print(json.dumps({"bench": "pool_start", "workers": runtime.num_workers,
                          "cores": os.cpu_count(),
                          "seconds": round(time.perf_counter() - start, 2)}))
        texts, examples = math_batch(64)
        print(json.dumps({"bench": "math_step_64", **measure(runtime, texts, examples, {"math": 1.0})}))
        texts, examples = math_batch(args.math)
        print(json.dumps({"bench": "math", **measure(runtime, texts, examples, {"math": 1.0})}))
        spec = {"math": 1.0, "format": 0.5, "tag_count": 0.25}
        print(json.dumps({"bench": "math+format+tag_count", **measure(runtime, texts, examples, spec)}))
        if sandbox_check() is not None:
            print(json.dumps({"bench": "code", "skipped": sandbox_check()}))
            return
        texts, examples = code_batch(args.code)
        print(json.dumps({"bench": "code", **measure(runtime, texts, examples, {"code": 1.0})}))


if __name__ == "__main__":
    main()
