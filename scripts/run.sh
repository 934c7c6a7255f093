#!/usr/bin/env bash
# Serve the shop as production does: its pages from gunicorn's sync workers (WSGI) on PORT,
# its websockets from uvicorn (ASGI) on PORT + 1 (WEBSOCKET_PORT), and one worker per task
# queue beside them: critical (payments, refunds), emails, analytics (reports, exports) and
# default. The pages open their websockets on their own host at WEBSOCKET_PORT
# (project/templatetags/websockets.py); in production the ingress routes /ws/ instead.
#
# This script is the process manager of `make run`: every process runs in a supervise loop
# that starts it again a second after it exits, whatever killed it. Each worker
# (`manage.py run_worker <queue>`) supervises its own cluster in turn, and its processes die
# with it. Ctrl+C, SIGTERM or SIGHUP stops everything: SIGTERM to each process, up to 15 s for
# running tasks to finish (an unfinished one is redelivered later), then SIGKILL.
set -euo pipefail
host="${1:-127.0.0.1}"
port="${2:-8000}"
py=.venv/bin/python
queues=(critical emails analytics default)
# The workers' logs live beside the embedded default's data (var/ unless BAZAAR_VAR_DIR says).
var_dir="${BAZAAR_VAR_DIR:-var}"
mkdir -p "$var_dir"
# The site's origin, for the CSP's connect-src and the websocket Origin check (any port):
# the pages' server, which the websockets' Origin names.
export SITE_URL="${SITE_URL:-http://$host:$port}"
export WEBSOCKET_PORT="${WEBSOCKET_PORT:-$((port + 1))}"

declare -A loops=()

# supervise NAME LOG COMMAND...: run COMMAND, and run it again whenever it exits.
supervise() {
  local name=$1 log=$2 child="" code msg
  shift 2
  trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0' TERM
  while :; do
    "$@" >>"$log" 2>&1 &
    child=$!
    code=0
    wait "$child" || code=$?
    msg="$(date +%T) $name stopped (exit code $code); starting it again in 1 s"
    echo "$msg" >&2
    [ "$log" = /dev/stdout ] || echo "$msg" >>"$log"
    sleep 1
  done
}

stop_all() {
  trap - EXIT INT TERM HUP
  local name alive
  for name in "${!loops[@]}"; do kill -TERM "${loops[$name]}" 2>/dev/null || true; done
  for _ in $(seq 150); do
    alive=0
    for name in "${!loops[@]}"; do
      if kill -0 "${loops[$name]}" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  # Whatever did not stop in time goes now (a worker's cluster dies with its main process).
  pkill -KILL -P "$(IFS=,; echo "${loops[*]}")" 2>/dev/null || true
  for name in "${!loops[@]}"; do kill -KILL "${loops[$name]}" 2>/dev/null || true; done
}
trap stop_all EXIT
# SIGTERM (a supervisor, an IDE, `timeout`) and SIGHUP (a closed terminal) stop everything
# exactly as Ctrl+C does: the EXIT trap runs stop_all.
trap 'exit 130' INT
trap 'exit 143' TERM HUP

for queue in "${queues[@]}"; do
  supervise "worker $queue" "$var_dir/worker-$queue.log" "$py" manage.py run_worker "$queue" &
  loops[$queue]=$!
done
# The pages: gunicorn's sync workers, the lowest CPU per request on these synchronous views
# (docs/performance.md, "The serving shape"). WEB_CONCURRENCY workers, one by default: the
# embedded default's cache is each process's own memory (rate limits, sign-in codes), so more
# than one needs REDIS_URL. No access log (gunicorn's is off unless asked for): Bazaar writes
# its own JSON line per request, with tokens in URLs masked. --forwarded-allow-ips "": the
# scheme and client address are Bazaar's to decide (TRUSTED_PROXIES), not gunicorn's.
# --no-control-socket: nothing here uses gunicornc, and two servers would share its path.
supervise web /dev/stdout "$py" -m gunicorn project.wsgi:application \
  --bind "$host:$port" --workers "${WEB_CONCURRENCY:-1}" --worker-class sync \
  --log-level warning --forwarded-allow-ips "" --no-control-socket --graceful-timeout 10 &
loops[web]=$!
# The websockets: uvicorn, with the image's flags (scripts/container-entrypoint.sh). Its ASGI
# lifespan runs the embedded default's event dispatcher, beside the in-memory channel layer
# the live pages' sockets are on. --ws-per-message-deflate false: uvicorn would compress
# every live fragment once per socket and keep a compressor per socket (about 50 KiB each;
# docs/performance-websockets.md).
supervise websockets /dev/stdout "$py" -m uvicorn project.asgi:application \
  --host "$host" --port "$WEBSOCKET_PORT" --log-level warning --no-proxy-headers \
  --no-access-log --ws-per-message-deflate false &
loops[websockets]=$!

# Without EMAIL_HOST every email is a file (project.background.mail_files): say where.
if [ -n "${EMAIL_HOST:-}" ]; then
  mail_note="Emails are sent through $EMAIL_HOST."
else
  mail_note="Emails are written to $(realpath -m "${BAZAAR_VAR_DIR:-var}/mail")/ (an .eml and an .html copy each)."
fi
cat <<MSG

  Bazaar is running at http://$host:$port/ (its live pages' websockets on port $WEBSOCKET_PORT)
  Demo accounts (password: bazaar-demo):
    shopper@example.com   a shopper with a saved address
    vendor@example.com    owner of the first vendor (backoffice at /backoffice/)
    staff@example.com     staff and superuser (admin at /admin/)
  Staff and shop owners set up an authenticator app (two-factor sign-in) the first time.
  $mail_note
  The task workers log to $var_dir/worker-<queue>.log; a server or a worker that stops is
  started again.
  Test cards: 4242 4242 4242 4242 approves, 4000 0000 0000 0002 is declined.
  Press Ctrl+C to stop.

MSG
# Waited for in the background, so a TERM or INT to this script runs the trap at once.
wait "${loops[web]}"
