#!/usr/bin/env bash
# Start the API and one worker that consumes both queues; Ctrl-C stops both cleanly
# (the worker checkpoints a running job and hands it back to the queue).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

"$BIN/celery" -A worker.app worker --pool=solo --queues=gpu,cpu --loglevel=INFO \
    --hostname="crucible@%h" &
worker=$!
"$BIN/uvicorn" api.main:app --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" &
api=$!

stop() {
    trap - INT TERM
    kill -TERM "$api" "$worker" 2>/dev/null
    wait "$api" "$worker" 2>/dev/null
    exit 0
}
trap stop INT TERM
echo "Crucible: API on http://${HOST:-127.0.0.1}:${PORT:-8000} (docs at /docs); Ctrl-C stops."
wait -n "$api" "$worker"
echo "a process exited; stopping the other" >&2
stop
