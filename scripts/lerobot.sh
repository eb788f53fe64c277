#!/usr/bin/env bash
# Install LeRobot in its own virtual environment (tests read Jangin's LeRobot exports with LeRobot's own loader).
#
#   scripts/lerobot.sh install        # idempotent; prints the venv path, the install time and its size
#   scripts/lerobot.sh python ARGS... # run that venv's python (offline: HF_HUB_OFFLINE=1)
#   scripts/lerobot.sh path           # print the venv's python path (exit 1 when not installed)
#   scripts/lerobot.sh system         # only the system part (Debian's FFmpeg libraries for torchcodec)
#   scripts/lerobot.sh wait SECONDS   # wait for an install running elsewhere (CI runs it in the
#                                     # background), then exit 0 when installed, 1 when not
#
# LeRobot pins torch < 2.11, datasets, huggingface-hub, rerun-sdk < 0.27 and av < 16, which clash with
# Jangin's venv: it lives in its own venv beside Label Studio's, never in Jangin's. LeRobot 0.5+ needs
# Python >= 3.12; on Python 3.11 pip resolves the newest release that supports it (0.4.x, which reads and
# writes the v3.0 dataset format).
#
# Environment: JANGIN_LEROBOT_VENV (default ~/.cache/jangin/lerobot-venv), JANGIN_LEROBOT_SPEC
# (default "lerobot>=0.4.4,<0.7"), JANGIN_LEROBOT_PYTHON (python3 used to create the venv),
# JANGIN_LEROBOT_NO_APT=1 (install leaves the system part out: CI runs it beside apt's other work).
# Two installs never race: the second waits on the first's lock ($VENV.lock).
set -euo pipefail

SPEC=${JANGIN_LEROBOT_SPEC:-lerobot>=0.4.4,<0.7}
VENV=${JANGIN_LEROBOT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/jangin/lerobot-venv}
PY=${JANGIN_LEROBOT_PYTHON:-python3}

die() { echo "lerobot.sh: $*" >&2; exit 1; }

installed() {
  [ -x "$VENV/bin/python" ] && [ -f "$VENV/.jangin-ok" ] && "$VENV/bin/python" -c \
    "import lerobot.datasets.lerobot_dataset" >/dev/null 2>&1
}

ffmpeg_libs() {
  # torchcodec (LeRobot's default video decoder) loads the system's FFmpeg libraries; without them
  # LeRobot falls back to PyAV and the torchcodec test skips. Debian 12 names; a failure only warns.
  ldconfig -p 2>/dev/null | grep -q 'libavcodec\.so\.' && return 0
  command -v apt-get >/dev/null 2>&1 || { echo "lerobot.sh: no FFmpeg libraries (torchcodec unusable)" >&2; return 0; }
  local SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 libavdevice59 libavfilter8 >/dev/null; } \
    || echo "lerobot.sh: could not install the FFmpeg libraries (torchcodec unusable; PyAV still works)" >&2
}

cmd_install() {
  [ "${JANGIN_LEROBOT_NO_APT:-0}" = 1 ] || ffmpeg_libs
  mkdir -p "$(dirname "$VENV")"
  exec 9>"$VENV.lock"
  flock 9
  if installed; then
    echo "lerobot $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("lerobot"))') already installed in $VENV"
    return 0
  fi
  echo "installing $SPEC into $VENV (torch and friends: a few GB, several minutes)" >&2
  mkdir -p "$(dirname "$VENV")"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  local log="$VENV.install.log" t0; t0=$(date +%s)
  if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/pip" install "$SPEC" >"$log" 2>&1; then
    tail -n 20 "$log" >&2; rm -rf "$VENV"; die "pip install $SPEC failed (log: $log)"
  fi
  "$VENV/bin/python" -c "import lerobot.datasets.lerobot_dataset" >>"$log" 2>&1 \
    || { tail -n 20 "$log" >&2; rm -rf "$VENV"; die "lerobot installed but does not import (log: $log)"; }
  touch "$VENV/.jangin-ok"
  echo "installed $("$VENV/bin/python" -c 'from importlib.metadata import version; print("lerobot", version("lerobot"), "torch", version("torch"))') in $VENV: $(( $(date +%s) - t0 )) s, $(du -sh "$VENV" | cut -f1)"
}

action=${1:-}; shift || true
case "$action" in
  install) cmd_install ;;
  path) installed || exit 1; echo "$VENV/bin/python" ;;
  system) ffmpeg_libs ;;
  wait) mkdir -p "$(dirname "$VENV")"
        flock -w "${1:-0}" "$VENV.lock" true || { echo "lerobot.sh: still installing after ${1:-0} s" >&2; exit 1; }
        installed || { echo "lerobot.sh: not installed (see $VENV.install.log)" >&2; exit 1; } ;;
  python) installed || die "lerobot is not installed in $VENV; run: $0 install"
          HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 exec "$VENV/bin/python" "$@" ;;
  *) echo "usage: $0 install|path|system|wait SECONDS|python [args]" >&2; exit 2 ;;
esac
