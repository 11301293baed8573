#!/usr/bin/env bash
# Set up and run the whole test suite (unit, API through gradio_client, browser through Playwright + Chromium).
# Extra arguments go to pytest, e.g. bash scripts/test.sh -k schedules
set -euo pipefail
cd "$(dirname "$0")/.."
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1
REQUIREMENTS=requirements-dev.txt bash scripts/setup.sh
# A real browser for the browser tests: Debian's Chromium (never `playwright install`, which downloads one).
if [[ -z "${ADIFF_CHROMIUM:-}" && ! -x /usr/bin/chromium ]]; then
  if command -v apt-get >/dev/null && [[ "$(id -u)" == "0" ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium is needed for the browser tests: install it (e.g. apt-get install chromium) or set ADIFF_CHROMIUM=/path/to/chrome" >&2
  fi
fi
mkdir -p artifacts
exec .venv/bin/python -m pytest "$@"
