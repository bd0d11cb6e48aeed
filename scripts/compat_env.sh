#!/usr/bin/env bash
# A virtualenv with the GPU image's package versions (Python 3.12, torch 2.11, transformers 5.17),
# the package installed into it, and the CPU fast tests run under it:
#   scripts/compat_env.sh                 # venv in .venv-gpu-image
#   VENV=/tmp/v PYTHON=python3.12 scripts/compat_env.sh -k distributed   # extra args go to pytest
# torch comes from the CPU index: the default index would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-gpu-image}
PYTHON=${PYTHON:-python3.12}
TORCH=${TORCH:-2.11.0}
TRANSFORMERS=${TRANSFORMERS:-5.17.0}
PY="$VENV/bin/python"

[ -x "$PY" ] || "$PYTHON" -m venv "$VENV"
# torch from the CPU index; where that index cannot be reached, the default index's build (its CUDA
# libraries come as dependencies, some GB; it runs on CPU all the same)
"$PY" -m pip install -q "torch==$TORCH" --index-url https://download.pytorch.org/whl/cpu \
    || "$PY" -m pip install -q "torch==$TORCH"
# the repository's constraints pin newer versions: override torch and transformers, keep the rest
pins=$(mktemp)
trap 'rm -f "$pins"' EXIT
grep -v -E '^(torch|transformers)==' constraints.txt > "$pins"
printf 'torch==%s\ntransformers==%s\n' "$TORCH" "$TRANSFORMERS" >> "$pins"
"$PY" -m pip install -q -c "$pins" "transformers==$TRANSFORMERS" -e ".[dev]"
"$PY" -c "import torch, transformers, reasonrl; print('torch', torch.__version__, 'transformers', transformers.__version__)"
"$PY" -m pytest -q -m "not slow" -p no:cacheprovider "$@" tests
