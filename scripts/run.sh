#!/usr/bin/env bash
# Serve the shop over ASGI (uvicorn) with one Django-Q2 cluster per task queue beside it:
# critical (payments, refunds), emails, analytics (reports, exports) and default. Each cluster
# is its own process group (setsid), so Ctrl+C reaches only uvicorn and this script, which then
# stops every cluster gracefully (SIGTERM to its main process) and kills what is left of it.
set -euo pipefail
host="${1:-127.0.0.1}"
port="${2:-8000}"
py=.venv/bin/python
queues=(critical emails analytics default)
mkdir -p var

declare -A pids=()
web_pid=""

stop_all() {
  trap - EXIT INT TERM
  local queue alive
  [ -n "$web_pid" ] && kill -TERM "$web_pid" 2>/dev/null || true
  for queue in "${!pids[@]}"; do kill -TERM "${pids[$queue]}" 2>/dev/null || true; done
  # Up to 15 s for running tasks to finish; an unfinished one is redelivered later.
  for _ in $(seq 150); do
    alive=0
    for queue in "${!pids[@]}"; do
      if kill -0 "${pids[$queue]}" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for queue in "${!pids[@]}"; do kill -KILL -- "-${pids[$queue]}" 2>/dev/null || true; done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

for queue in "${queues[@]}"; do
  Q_CLUSTER_NAME="$queue" setsid "$py" manage.py qcluster >"var/qcluster-$queue.log" 2>&1 &
  pids[$queue]=$!
done

cat <<MSG

  Bazaar is running at http://$host:$port/
  Demo accounts (password: bazaar-demo):
    shopper@example.com   a shopper with a saved address
    vendor@example.com    member of the first vendor (backoffice at /backoffice/)
    staff@example.com     staff and superuser (admin at /admin/)
  Emails are written to var/mail/. Task workers, one cluster per queue, log to
  var/qcluster-<queue>.log (pids: $(for q in "${queues[@]}"; do printf '%s=%s ' "$q" "${pids[$q]}"; done)).
  Test cards: 4242 4242 4242 4242 approves, 4000 0000 0000 0002 is declined.
  Press Ctrl+C to stop.

MSG
# In the background and waited for, so a TERM or INT to this script runs the trap at once.
"$py" -m uvicorn project.asgi:application --host "$host" --port "$port" --log-level warning &
web_pid=$!
wait "$web_pid"
