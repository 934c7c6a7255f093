#!/usr/bin/env bash
# Serve the shop over ASGI (uvicorn) with a Django-Q2 worker beside it.
set -euo pipefail
host="${1:-127.0.0.1}"
port="${2:-8000}"
py=.venv/bin/python

$py manage.py qcluster >var/qcluster.log 2>&1 &
worker_pid=$!
trap 'kill "$worker_pid" 2>/dev/null || true' EXIT INT TERM

cat <<MSG

  Bazaar is running at http://$host:$port/
  Demo accounts (password: bazaar-demo):
    shopper@example.com   a shopper with a saved address
    vendor@example.com    member of the first vendor (backoffice at /backoffice/)
    staff@example.com     staff and superuser (admin at /admin/)
  Emails are written to var/mail/; the worker logs to var/qcluster.log.
  Test cards: 4242 4242 4242 4242 approves, 4000 0000 0000 0002 is declined.
  Press Ctrl+C to stop.

MSG
$py -m uvicorn project.asgi:application --host "$host" --port "$port" --log-level warning
