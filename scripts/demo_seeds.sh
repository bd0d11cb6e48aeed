#!/usr/bin/env bash
# The demo's RL stages under more seeds: `bash scripts/demo_seeds.sh 1 2` runs recipes/r1-tiny.yaml
# as runs/r1-tiny-seed<S> with run.seed=S for every stage after pretraining, on the *same* base and
# student base as runs/r1-tiny (copied, not retrained: the seed being varied is RL's, and the
# pretraining stages are complete there). Then `python scripts/demo_seeds_table.py` tabulates them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-runs}
SHARED=(base student_base)
SEEDED=(r1_zero cold_start_data cold_start reasoning rft_data rft r1 student_distilled student_rl)
[ -f "$RUNS/r1-tiny/stages/base/stage.json" ] || { echo "demo_seeds: run the demo first (make demo)" >&2; exit 1; }
for seed in "$@"; do
  dst="$RUNS/r1-tiny-seed$seed/stages"
  mkdir -p "$dst"
  for stage in "${SHARED[@]}"; do
    [ -d "$dst/$stage" ] || cp -r "$RUNS/r1-tiny/stages/$stage" "$dst/$stage"
  done
  overrides=("name=r1-tiny-seed$seed" "run.dir=$RUNS")
  for stage in "${SEEDED[@]}"; do overrides+=("stages.$stage.run.seed=$seed"); done
  "$PY" -m reasonrl run recipes/r1-tiny.yaml "${overrides[@]}"
done
