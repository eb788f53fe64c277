#!/usr/bin/env bash
# Set up the headless browser the review-page test uses: Debian's chromium plus the Playwright Python
# package pointed at it. Playwright never downloads a browser (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1).
# Idempotent: does nothing when both are there. Usage: scripts/ci-browser.sh [PYTHON]
set -euo pipefail
PY="${1:-${PYTHON:-.venv/bin/python}}"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
fi
if ! "$PY" -c "import playwright" >/dev/null 2>&1; then
    "$PY" -m pip install -q "playwright>=1.45"
fi
chromium --version
"$PY" -c "import playwright, importlib.metadata as m; print('playwright', m.version('playwright'))"
