#!/usr/bin/env bash
# Creates .venv (afresh when CI=true or FRESH=1) and installs adiff's dependencies into it.
# torch goes in FIRST and pinned (TORCH_SPEC, default torch==2.13.0): an open range in a fresh venv would pull a
# multi-GB CUDA build; with torch present, requirements.txt's open range installs nothing more for it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
if [[ "${CI:-}" == "true" || "${FRESH:-0}" == "1" ]]; then rm -rf "$VENV"; fi
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
"$VENV/bin/python" -c "import torch" 2>/dev/null || "$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
"$VENV/bin/python" -m pip install -q -r "${REQUIREMENTS:-requirements.txt}"
