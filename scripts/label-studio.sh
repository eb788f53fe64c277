#!/usr/bin/env bash
# Install, start, stop a local Label Studio server for Jangin (tests, the demo, a labelling PC).
#
#   scripts/label-studio.sh install                 # into its own venv (idempotent)
#   scripts/label-studio.sh start [--port P] [--data-dir D] [--root R] [--user U] [--password W] [--token T]
#                                 (defaults: 8080, ~/.jangin/label-studio, $JANGIN_HOME/label-studio-root,
#                                  labeller@jangin.local, jangin-labeller, jangin-local-token-0001)
#   scripts/label-studio.sh stop  [--data-dir D]
#   scripts/label-studio.sh status [--port P] [--data-dir D]
#
# Label Studio is a separate Django service with its own pins (Django, pyarrow<25, OpenCV headless):
# it lives in its own virtual environment, never in Jangin's. The server listens on 127.0.0.1 only and
# makes no outbound calls (version check, analytics and Sentry are switched off below).
#
# Environment: JANGIN_LS_VENV (default ~/.cache/jangin/label-studio-venv), JANGIN_LS_VERSION (1.23.2),
# JANGIN_LS_PYTHON (python3 used to create the venv).
set -euo pipefail

LS_VERSION=${JANGIN_LS_VERSION:-1.23.2}
VENV=${JANGIN_LS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/jangin/label-studio-venv}
PY=${JANGIN_LS_PYTHON:-python3}

PORT=8080
DATA=${JANGIN_LS_DATA:-$HOME/.jangin/label-studio}
ROOT=""
USER_EMAIL=labeller@jangin.local
PASSWORD=jangin-labeller
TOKEN=jangin-local-token-0001
WAIT=180

die() { echo "label-studio.sh: $*" >&2; exit 1; }

installed() {
  [ -x "$VENV/bin/label-studio" ] && "$VENV/bin/python" - "$LS_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
import label_studio  # noqa: F401
sys.exit(0 if version("label-studio") == sys.argv[1] else 1)
EOF
}

cmd_install() {
  if installed; then
    echo "label-studio $LS_VERSION already installed in $VENV"
    return 0
  fi
  echo "installing label-studio==$LS_VERSION into $VENV (about 1 GB, 1-3 min)" >&2
  mkdir -p "$(dirname "$VENV")"
  # A half-installed venv fails the import check above, so it is simply rebuilt.
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  local log="$VENV.install.log"
  # pip's output goes to a log (it is long); its tail is shown when the install fails.
  if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/pip" install "label-studio==$LS_VERSION" >"$log" 2>&1; then
    tail -n 20 "$log" >&2; rm -rf "$VENV"; die "pip install label-studio==$LS_VERSION failed (log: $log)"
  fi
  installed || { rm -rf "$VENV"; die "label-studio installed but does not import"; }
  echo "installed label-studio $LS_VERSION in $VENV"
}

parse() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) PORT=$2; shift 2 ;;
      --data-dir) DATA=$2; shift 2 ;;
      --root) ROOT=$2; shift 2 ;;
      --user) USER_EMAIL=$2; shift 2 ;;
      --password) PASSWORD=$2; shift 2 ;;
      --token) TOKEN=$2; shift 2 ;;
      --wait) WAIT=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  # Jangin writes task files under $JANGIN_HOME/label-studio-root by default: serve the same folder.
  [ -n "$ROOT" ] || ROOT="${JANGIN_HOME:-$HOME/.jangin}/label-studio-root"
}

port_busy() {
  "$PY" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
finally:
    s.close()
sys.exit(1)
EOF
}

healthy() {
  "$PY" - "$1" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

cmd_start() {
  installed || die "label-studio is not installed in $VENV; run: $0 install"
  [ ${#TOKEN} -ge 6 ] && [ ${#TOKEN} -le 40 ] || die "the token must have 6..40 characters"
  # A busy port makes Label Studio move silently to port+1: refuse instead.
  if port_busy "$PORT"; then die "port $PORT on 127.0.0.1 is busy"; fi
  mkdir -p "$DATA/xdg" "$DATA/tmp" "$ROOT"
  DATA=$(cd "$DATA" && pwd); ROOT=$(cd "$ROOT" && pwd)
  local pidfile="$DATA/label-studio.pid" log="$DATA/label-studio.log"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    die "already running (pid $(cat "$pidfile")) for $DATA"
  fi
  (
    export LABEL_STUDIO_BASE_DATA_DIR="$DATA" XDG_CONFIG_HOME="$DATA/xdg" TMPDIR="$DATA/tmp"
    export LABEL_STUDIO_USERNAME="$USER_EMAIL" LABEL_STUDIO_PASSWORD="$PASSWORD"
    export LABEL_STUDIO_USER_TOKEN="$TOKEN" LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true
    export LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK=true
    export LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT="$ROOT"
    # No outbound calls: version check, analytics, Sentry (backend and frontend).
    export LABEL_STUDIO_LATEST_VERSION_CHECK=false LATEST_VERSION_CHECK=false
    export LABEL_STUDIO_SENTRY_DSN= SENTRY_DSN= LABEL_STUDIO_FRONTEND_SENTRY_DSN= FRONTEND_SENTRY_DSN=
    export LABEL_STUDIO_COLLECT_ANALYTICS=false COLLECT_ANALYTICS=false
    # Webhooks to a receiver on this machine (jangin's live sync) are refused by the SSRF guard otherwise.
    export LABEL_STUDIO_SSRF_PROTECTION_ENABLED=false SSRF_PROTECTION_ENABLED=false
    export DJANGO_DB=sqlite PYTHONUNBUFFERED=1
    exec setsid "$VENV/bin/label-studio" start --no-browser --internal-host 127.0.0.1 --port "$PORT" \
      --data-dir "$DATA" >"$log" 2>&1 </dev/null
  ) &
  echo $! >"$pidfile"
  local t=0
  until healthy "$PORT"; do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      tail -n 30 "$log" >&2; rm -f "$pidfile"; die "label-studio exited during start-up (log: $log)"
    fi
    t=$((t + 1)); [ "$t" -le "$WAIT" ] || { tail -n 30 "$log" >&2; cmd_stop; die "no /health after ${WAIT}s"; }
    sleep 1
  done
  echo "label-studio up at http://127.0.0.1:$PORT (pid $(cat "$pidfile"), data $DATA, root $ROOT, ${t}s)"
}

cmd_stop() {
  local pidfile="$DATA/label-studio.pid"
  [ -f "$pidfile" ] || { echo "not running (no $pidfile)"; return 0; }
  local pid; pid=$(cat "$pidfile")
  # setsid made the server its own process group: stop the group (uwsgi/gunicorn workers too).
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "stopped label-studio (pid $pid)"
}

cmd_status() {
  if healthy "$PORT"; then echo "up at http://127.0.0.1:$PORT"; else echo "down (port $PORT)"; return 1; fi
}

action=${1:-}; shift || true
case "$action" in
  install) cmd_install ;;
  start) parse "$@"; cmd_start ;;
  stop) parse "$@"; cmd_stop ;;
  status) parse "$@"; cmd_status ;;
  *) echo "usage: $0 install|start|stop|status [options]" >&2; exit 2 ;;
esac
