#!/usr/bin/env bash
# What the capture tests need beyond `pip install -e ./capture -e '.[dev]'`. Idempotent.
#   - mosquitto: the MQTT broker the live-source test starts on loopback (never as a service)
#   - paho-mqtt: capture's MQTT client (a dependency of jangin-capture)
#   - scikit-image: the astronaut photograph and LFW faces for the face-blurring tests (dev only)
#   - av (PyAV): writes the variable-frame-rate video of the frame-time test (dev only)
set -euo pipefail
PY="${1:-${PYTHON:-.venv/bin/python}}"
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mosquitto
  # the package may enable a system service; the tests start their own broker
  (command -v systemctl >/dev/null && $SUDO systemctl disable --now mosquitto >/dev/null 2>&1) || true
fi
"$PY" -c "import paho.mqtt, skimage, av" 2>/dev/null || "$PY" -m pip install -q "paho-mqtt>=2.0" "scikit-image>=0.22" "av>=12"
echo "capture CI dependencies ready"
