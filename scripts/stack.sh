#!/usr/bin/env bash
# Local AWS stack: moto (DynamoDB + SQS) on a free loopback port, state in .local/.
#   stack.sh start   start moto (if ours is not running) and print its endpoint
#   stack.sh stop    stop the moto we started
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=.local
PY=.venv/bin/python
mkdir -p "$STATE"

ours_alive() { [ -f "$STATE/moto.pid" ] && kill -0 "$(cat "$STATE/moto.pid")" 2>/dev/null; }

case "${1:-}" in
start)
  if ours_alive && [ -f "$STATE/moto.port" ]; then
    echo "http://127.0.0.1:$(cat "$STATE/moto.port")"; exit 0
  fi
  rm -f "$STATE/moto.port"
  nohup "$PY" scripts/moto_server.py "$STATE/moto.port" >"$STATE/moto.log" 2>&1 &
  echo $! >"$STATE/moto.pid"
  for _ in $(seq 1 100); do
    # Ready only when *our* process is alive and answering on the port it chose (never someone else's server).
    if ! ours_alive; then echo "moto failed to start:" >&2; cat "$STATE/moto.log" >&2; exit 1; fi
    if [ -f "$STATE/moto.port" ] && curl -fsS "http://127.0.0.1:$(cat "$STATE/moto.port")/moto-api/" >/dev/null 2>&1; then
      echo "http://127.0.0.1:$(cat "$STATE/moto.port")"; exit 0
    fi
    sleep 0.2
  done
  echo "moto did not become ready" >&2; exit 1
  ;;
stop)
  if ours_alive; then kill "$(cat "$STATE/moto.pid")" 2>/dev/null || true; fi
  rm -f "$STATE/moto.pid" "$STATE/moto.port"
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
