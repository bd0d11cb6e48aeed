#!/usr/bin/env bash
# The default demo: R1-Zero on a tiny DeepSeek-V3, end to end on a CPU.
#   1. pretrain an imperfect base model on generated 2-digit addition
#   2. GRPO from that base with accuracy + format rewards (R1-Zero)
#   3. held-out evaluation on the test split (greedy, pass@1 over 4 samples, cons@4), base vs RL
# Re-running resumes finished or interrupted stages from their checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-runs}
"$PY" -m reasonrl pretrain recipes/demo-pretrain.yaml "run.dir=$RUNS" "$@"
"$PY" -m reasonrl rl recipes/demo-r1zero.yaml "run.dir=$RUNS" "model.path=$RUNS/demo-base/model" "$@"
"$PY" -m reasonrl eval "$RUNS/demo-base/model" "$RUNS/demo-r1zero/model" --names base,r1-zero \
  --task arithmetic --task-option digits=2 --split test --limit 400 --k 4 --max-new-tokens 64 \
  "run.dir=$RUNS" run.name=demo-eval
echo "learning curve: $RUNS/demo-r1zero/metrics.jsonl   samples: $RUNS/demo-r1zero/samples.jsonl"
echo "held-out results: $RUNS/demo-eval/eval_results.json"
