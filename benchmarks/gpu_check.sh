#!/usr/bin/env bash
# GPU check, under 10 minutes on one H200: the `gpu`-marked tests, then short bf16 GRPO runs with
# the built-in sampler on a native model and on a tiny transformers model; tokens/s and step times
# go to $OUT_DIR/gpu_check.json. Meant for the GPU image (Python 3.12, torch 2.11, transformers
# 5.17, no vLLM, no network): nothing is downloaded, the package is installed without dependencies
# (or used from the checkout), and a missing pure-Python dependency is reported by name (carry its
# wheel and `pip install --no-deps` it first). vLLM is not exercised: that path is not yet verified
# on hardware.
#   bash benchmarks/gpu_check.sh [OUT_DIR]      (default runs/gpu_check)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
OUT_DIR=${1:-runs/gpu_check}
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # works even if the editable install below fails
"$PY" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || echo "gpu_check: pip install skipped, using PYTHONPATH"
"$PY" - <<'PY'
import importlib, sys
import torch
missing = [m for m in ("transformers", "safetensors", "tokenizers", "yaml", "rich", "gguf", "math_verify",
                       "reasoning_gym", "matplotlib", "pytest") if importlib.util.find_spec(m) is None]
print(f"gpu_check: python {sys.version.split()[0]}, torch {torch.__version__}, cuda {torch.cuda.is_available()}")
if missing:
    sys.exit(f"gpu_check: missing modules {missing}: carry their wheels and pip install --no-deps them")
if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA device visible")
PY
T0=$(date +%s)
set +e
# the files holding gpu-marked tests (not the whole suite: its dev-only imports, e.g. trl, are absent there)
timeout 180 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/test_compute.py > "$OUT_DIR/gpu_tests.log" 2>&1
TESTS_RC=$?
set -e
tail -3 "$OUT_DIR/gpu_tests.log"
RUNS="$OUT_DIR/runs"
COMMON=(data.task=arithmetic "data.options={digits: 2}" rl.prompts_per_step=16 rl.group_size=8 rl.max_new_tokens=48
        rl.steps=6 eval.n_examples=32 samples_every=0 checkpoint.every=100 compute.device=cuda compute.dtype=bf16
        "run.dir=$RUNS" --quiet)
# a native base model (briefly pretrained, so its tokenizer and card exist), then GRPO on it
timeout 180 "$PY" -m reasonrl pretrain "run.dir=$RUNS" run.name=base budget.steps=30 data.n_examples=2000 \
    "model.overrides={hidden_size: 128, num_hidden_layers: 2, n_routed_experts: 4, n_group: 1, topk_group: 1}" \
    data.seq_len=128 eval.every=0 eval.n_examples=16 checkpoint.every=1000 --quiet
timeout 150 "$PY" -m reasonrl rl "${COMMON[@]}" run.name=native "model.path=$RUNS/base/model"
# a tiny random Qwen2 with the native model's tokenizer (built here: no hub)
"$PY" - "$RUNS/base/model" "$RUNS/qwen" <<'PY'
import sys, torch
from transformers import Qwen2Config, Qwen2ForCausalLM
from reasonrl.tokenizer import load_tokenizer
tok = load_tokenizer(sys.argv[1])
torch.manual_seed(0)
cfg = Qwen2Config(vocab_size=len(tok), hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=512, eos_token_id=tok.eos_token_id)
Qwen2ForCausalLM(cfg).save_pretrained(sys.argv[2]); tok.save_pretrained(sys.argv[2])
PY
timeout 150 "$PY" -m reasonrl rl "${COMMON[@]}" run.name=qwen "model.path=$RUNS/qwen"
"$PY" - "$RUNS" "$OUT_DIR/gpu_check.json" "$TESTS_RC" "$T0" <<'PY'
import json, sys, time
import torch
runs, out, tests_rc, t0 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "gpu_tests_rc": tests_rc,
          "vllm": "not exercised (not yet verified on hardware)", "runs": {}}
for name in ("native", "qwen"):
    rows = [json.loads(l) for l in open(f"{runs}/{name}/metrics.jsonl") if "step_time_s" in l]
    rows = [r for r in rows if "step_time_s" in r]
    mean = lambda k: sum(r.get(k, 0.0) for r in rows[1:]) / max(len(rows) - 1, 1)  # step 1 warms up
    result["runs"][name] = {"steps": len(rows), "step_time_s": [r["step_time_s"] for r in rows],
                            "tokens_per_s/gen": mean("tokens_per_s/gen"), "tokens_per_s/train": mean("tokens_per_s/train"),
                            "reward/mean_last": rows[-1].get("reward/mean") if rows else None}
result["wall_s"] = time.time() - t0
json.dump(result, open(out, "w"), indent=2)
print(json.dumps(result, indent=2))
PY
exit $TESTS_RC
