#!/usr/bin/env bash
# Start the API, a training worker (queues gpu and cpu) and a query worker (queue queries, so
# heavy queries never wait behind training); Ctrl-C stops all three cleanly (the training
# worker checkpoints a running job and hands it back to the queue).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

"$BIN/celery" -A worker.app worker --pool=solo --queues=gpu,cpu --loglevel=INFO \
    --hostname="crucible-train@%h" &
trainer=$!
"$BIN/celery" -A worker.app worker --pool=solo --queues=queries --loglevel=INFO \
    --hostname="crucible-queries@%h" &
querier=$!
"$BIN/uvicorn" api.main:app --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" &
api=$!

stop() {
    trap - INT TERM
    kill -TERM "$api" "$trainer" "$querier" 2>/dev/null
    wait "$api" "$trainer" "$querier" 2>/dev/null
    exit 0
}
trap stop INT TERM
echo "Crucible: API on http://${HOST:-127.0.0.1}:${PORT:-8000} (docs at /docs); Ctrl-C stops."
wait -n "$api" "$trainer" "$querier"
echo "a process exited; stopping the others" >&2
stop
