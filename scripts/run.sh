#!/usr/bin/env bash
# Start the API, a training worker (queues gpu and cpu) and a query worker (queue queries, so
# heavy queries never wait behind training), and keep them running:
# - a worker that exits (crashed, killed, out of memory) is started again, with one line that
#   says so; the job it was running resumes from its checkpoint once its lease expires. A
#   worker that keeps exiting as soon as it starts stops everything instead.
# - the API exiting stops the workers (nothing could reach them) and this script, status 1.
# - Ctrl-C or SIGTERM stops all three cleanly (the training worker checkpoints a running job
#   and hands it back to the queue); what has not stopped after STOP_TIMEOUT seconds is
#   killed. Either way nothing is left running.
# Needs bash 5.1 or later (`wait -n -p`).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}
# Secure by default: an API open to anyone who can reach it (AUTH_REQUIRED=false, the
# embedded default) listens on loopback only.
case "${AUTH_REQUIRED:-false}" in
1 | true | True | TRUE | yes | on) ;;
*)
    case $HOST in
    127.0.0.1 | localhost | ::1) ;;
    *)
        echo "run.sh: refusing to serve an open API on $HOST: set AUTH_REQUIRED=true and" \
            "ADMIN_API_KEY to listen beyond loopback" >&2
        exit 2
        ;;
    esac
    ;;
esac
QUICK_EXIT_SECONDS=10 # a worker that exits this soon after its start failed to start...
MAX_QUICK_EXITS=3     # ...and one that does so this many times in a row will not start

declare -A pid started quick_exits=([trainer]=0 [querier]=0)
declare -A name=([api]="API" [trainer]="training worker" [querier]="query worker")

start() { # start api|trainer|querier
    case $1 in
    api) "$BIN/uvicorn" api.main:app --host "$HOST" --port "$PORT" & ;;
    trainer)
        "$BIN/celery" -A worker.app worker --pool=solo --queues=gpu,cpu --loglevel=INFO \
            --hostname="crucible-train@%h" &
        ;;
    querier)
        "$BIN/celery" -A worker.app worker --pool=solo --queues=queries --loglevel=INFO \
            --hostname="crucible-queries@%h" &
        ;;
    esac
    pid[$1]=$!
    started[$1]=$SECONDS
}

alive() { # alive PID...: whether any of them is still running
    local p
    for p in "$@"; do
        kill -0 "$p" 2>/dev/null && return 0
    done
    return 1
}

stop() { # stop STATUS: SIGTERM to every process, SIGKILL after STOP_TIMEOUT, exit STATUS
    trap '' INT TERM # asked again meanwhile: the deadline below holds all the same
    local children # every process this script started and that still runs, recorded or not
    read -ra children <<<"$(jobs -p | tr '\n' ' ')"
    ((${#children[@]})) || exit "$1"
    kill -TERM "${children[@]}" 2>/dev/null
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while alive "${children[@]}" && ((SECONDS < deadline)); do
        sleep 0.2
    done
    kill -KILL "${children[@]}" 2>/dev/null
    wait "${children[@]}" 2>/dev/null
    exit "$1"
}

trap 'stop 0' INT TERM
start api
start trainer
start querier
echo "Crucible: API on http://$HOST:$PORT (docs at /docs); Ctrl-C stops."
while :; do
    exited=""
    wait -n -p exited "${pid[@]}"
    status=$?
    role=""
    for r in "${!pid[@]}"; do
        [[ ${pid[$r]} == "$exited" ]] && role=$r
    done
    if [[ -z $role ]]; then # not a child's exit: wait itself failed
        echo "crucible: wait failed (status $status); stopping everything" >&2
        stop 1
    fi
    if [[ $role == api ]]; then
        echo "crucible: the API exited (status $status); stopping the workers" >&2
        stop 1
    fi
    if ((SECONDS - started[$role] < QUICK_EXIT_SECONDS)); then
        quick_exits[$role]=$((quick_exits[$role] + 1))
    else
        quick_exits[$role]=0
    fi
    if ((quick_exits[$role] >= MAX_QUICK_EXITS)); then
        echo "crucible: the ${name[$role]} keeps exiting as it starts (status $status);" \
            "stopping everything" >&2
        stop 1
    fi
    echo "crucible: the ${name[$role]} (pid $exited) exited with status $status; restarting it" >&2
    sleep "${quick_exits[$role]}" # a moment between quick exits, none after a crash
    start "$role"
done
