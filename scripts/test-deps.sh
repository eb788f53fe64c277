#!/usr/bin/env bash
# What the tests need besides the Python venv, installed idempotently (each part is a no-op when present):
#   - Debian's chromium + Playwright pointed at it (review page tests; no browser download),
#   - Debian's mosquitto (MQTT tests start their own broker on loopback),
#   - Label Studio in its own venv (the labeling tests start a real server on loopback),
#   - LeRobot in its own venv (tests/physical read Jangin's LeRobot exports with LeRobot's own loader;
#     cold: about 8 GB with torch's CUDA wheels, 5-25 min; JANGIN_SKIP_LEROBOT=1 leaves it out and
#     those tests skip).
# Usage: scripts/test-deps.sh [PYTHON]   (PYTHON defaults to .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
bash scripts/ci-browser.sh "$PY"
if [ -f scripts/ci-capture.sh ]; then bash scripts/ci-capture.sh "$PY"; fi
bash scripts/label-studio.sh install
if [ "${JANGIN_SKIP_LEROBOT:-0}" != 1 ]; then bash scripts/lerobot.sh install; fi
