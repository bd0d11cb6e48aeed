#!/usr/bin/env bash
# Every benchmark behind docs/benchmarks.md and docs/benchmarks-rl.md, one after another (never two
# at once: they share the cores). Each prints its table and writes JSON under runs/bench/.
# About 45 minutes on a quiet 2-core x86 CPU; numbers from a busy machine are not comparable.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/bench}
mkdir -p "$OUT"
export PYTHONPATH=. OMP_WAIT_POLICY=PASSIVE
log() { echo "== $* (load average: $(cut -d' ' -f1-3 /proc/loadavg))"; }

log "GRPO step vs TRL, SmolLM2-135M"
$PY benchmarks/bench_rl.py --workload smollm2 --reps 2 --steps 2 --trl trl,trl_nogc --json "$OUT/rl-smollm2.json" | tee "$OUT/rl-smollm2.txt"
log "GRPO step vs TRL, tiny Qwen2, short prompts"
$PY benchmarks/bench_rl.py --workload tiny --reps 2 --steps 8 --trl trl,trl_nogc --json "$OUT/rl-tiny.json" | tee "$OUT/rl-tiny.txt"
log "GRPO step vs TRL, tiny Qwen2, R1-Zero template"
$PY benchmarks/bench_rl.py --workload tiny-long --reps 2 --steps 6 --trl trl,trl_nogc --json "$OUT/rl-tiny-long.json" | tee "$OUT/rl-tiny-long.txt"
log "sampler vs transformers generate"
$PY benchmarks/bench_sampler.py --smollm2 --reps 3 --threads 2 --json "$OUT/sampler.json" | tee "$OUT/sampler.txt"
log "scaling"
$PY benchmarks/bench_scaling.py --threads 2 --json "$OUT/scaling.json" | tee "$OUT/scaling.txt"
log "model training throughput"
$PY benchmarks/bench_model.py --threads 2 --json "$OUT/model.json" | tee "$OUT/model.txt"
log "rewards"
$PY benchmarks/bench_rewards.py | tee "$OUT/rewards.txt"
log "done"
