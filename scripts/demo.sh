#!/usr/bin/env bash
# The default demo: the whole R1 pipeline on a tiny DeepSeek-V3, end to end on a CPU
# (recipes/r1-tiny.yaml: pretrain -> R1-Zero -> cold start -> reasoning RL -> rejection sampling
# + SFT -> RL for all scenarios -> distillation vs RL on a smaller student -> test-split table).
# Re-running resumes: finished stages are skipped, a half-done one continues from its checkpoint.
# Extra arguments are recipe overrides, e.g. `bash scripts/demo.sh run.dir=/tmp/runs`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -m reasonrl run recipes/r1-tiny.yaml "$@"
