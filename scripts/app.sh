#!/usr/bin/env bash
# Set up (once) and run the explorer on the shipped presets: bash scripts/app.sh [app.py flags, e.g. --port 7860 --share]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python app.py "$@"
