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
# One line says when the service is ready (/readyz answers 200) and where to find it; one
# other if it is still not ready after READY_TIMEOUT seconds. LOG_LEVEL sets the level of all
# three (uvicorn's --log-level, Celery's --loglevel), ACCESS_LOG=true adds uvicorn's access log;
# the workers start without Celery's banner (`--quiet`), so that line is not lost in it.
# Needs bash 5.1 or later (`wait -n -p`).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}
READY_TIMEOUT=${READY_TIMEOUT:-60}
# The same level everywhere, checked here: uvicorn spells it in lower case, Celery in upper.
LOG_LEVEL=${LOG_LEVEL:-INFO}
case ${LOG_LEVEL,,} in
debug | info | warning | error | critical) ;;
*)
    echo "run.sh: LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not '$LOG_LEVEL'" >&2
    exit 2
    ;;
esac
# Read as the setting reads it (pydantic's booleans); off unless asked for.
case ${ACCESS_LOG:-false} in
[1tTyY] | [tT][rR][uU][eE] | [yY][eE][sS] | [oO][nN]) ACCESS_LOG_FLAG=--access-log ;;
[0fFnN] | [fF][aA][lL][sS][eE] | [nN][oO] | [oO][fF][fF]) ACCESS_LOG_FLAG=--no-access-log ;;
*)
    echo "run.sh: ACCESS_LOG must be true or false, not '$ACCESS_LOG'" >&2
    exit 2
    ;;
esac
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
    api)
        "$BIN/uvicorn" api.main:app --host "$HOST" --port "$PORT" \
            --log-level "${LOG_LEVEL,,}" "$ACCESS_LOG_FLAG" &
        ;;
    trainer)
        "$BIN/celery" -A worker.app --quiet worker --pool=solo --queues=gpu,cpu \
            --loglevel="${LOG_LEVEL^^}" --hostname="crucible-train@%h" &
        ;;
    querier)
        "$BIN/celery" -A worker.app --quiet worker --pool=solo --queues=queries \
            --loglevel="${LOG_LEVEL^^}" --hostname="crucible-queries@%h" &
        ;;
    esac
    pid[$1]=$!
    started[$1]=$SECONDS
}

# Polls /readyz (no proxy, 2 s per try) until it answers 200, then prints the ready line; says
# once if that takes longer than its patience. One process, so stopping it leaves nothing.
read -r -d '' ANNOUNCE <<'PY'
import http.client, sys, time, urllib.request
url, patience = sys.argv[1], float(sys.argv[2])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
deadline = time.monotonic() + patience
while True:
    try:
        with opener.open(f"{url}/readyz", timeout=2) as answer:
            if answer.status == 200:
                break
    except (OSError, http.client.HTTPException):  # not listening yet, or 503 not ready
        pass
    if deadline and time.monotonic() > deadline:
        print(f"crucible: the API is still not ready after {patience:g} s; {url}/readyz "
              "says which dependency fails", file=sys.stderr, flush=True)
        deadline = 0
    time.sleep(0.5)
print(f"Crucible is ready: API {url}  docs {url}/docs  dashboard {url}/  (Ctrl-C stops)",
      flush=True)
PY

base_url() { # where a browser on this machine reaches the API
    case $HOST in
    0.0.0.0 | "") echo "http://127.0.0.1:$PORT" ;;
    ::) echo "http://[::1]:$PORT" ;;
    *:*) echo "http://[$HOST]:$PORT" ;;
    *) echo "http://$HOST:$PORT" ;;
    esac
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
"$BIN/python" -c "$ANNOUNCE" "$(base_url)" "$READY_TIMEOUT" &
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
