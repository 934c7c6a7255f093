#!/bin/sh
# The container image's entrypoint: one image, the process chosen at run time.
#
#   web [gunicorn options]  gunicorn's sync workers serving the pages (WSGI)
#   websockets [uvicorn options]
#                           uvicorn serving the websockets under /ws/ (ASGI)
#   worker <queue>          the supervised Django-Q2 cluster of one queue (run_worker)
#   dispatcher              the domain-event dispatcher (run_dispatcher)
#   migrate                 apply migrations as the owner role (DATABASE_MIGRATE_URL)
#   manage <command> ...    any management command, e.g. `manage createsuperuser`
#   healthcheck             the image's HEALTHCHECK: checks whatever PID 1 runs
#
# Both servers listen on port PORT (8000 unless set) of every interface. Every process is
# exec'd, so it is PID 1 and receives the SIGTERM Docker or Kubernetes sends; each stops
# gracefully on it (docs/supervision.md).
set -eu
cd "$(dirname "$0")/.."

usage() {
  echo "usage: $0 web|websockets|worker <queue>|dispatcher|migrate|manage <command>...|healthcheck" >&2
  exit 64
}

role="${1:-web}"
[ "$#" -gt 0 ] && shift
case "$role" in
  web)
    # The same flags as `make run` (scripts/run.sh), behind a proxy that buffers requests
    # and responses (ingress-nginx), which is what sync workers need. WEB_CONCURRENCY
    # workers (gunicorn reads it; 2 here, one per core of the pod's CPU limit), each a
    # process: their metrics go to PROMETHEUS_MULTIPROC_DIR, emptied at start, so a scrape
    # sums them. No access log (gunicorn's is off unless asked for): Bazaar writes its own
    # JSON line, which masks the tokens of verification and reset links. The scheme and
    # client address are Bazaar's to decide (SECURE_PROXY_SSL_HEADER, TRUSTED_PROXIES), not
    # gunicorn's. Requests in progress get 20 s to finish on SIGTERM, within the pod's
    # termination grace period. Worker heartbeats in memory (/dev/shm), not on a disk.
    export WEB_CONCURRENCY="${WEB_CONCURRENCY:-2}"
    if [ -z "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
      export PROMETHEUS_MULTIPROC_DIR="${BAZAAR_VAR_DIR:-/tmp}/metrics"
      rm -rf "$PROMETHEUS_MULTIPROC_DIR"
      mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    fi
    exec python -m gunicorn project.wsgi:application --bind "0.0.0.0:${PORT:-8000}" \
      --worker-class sync --log-level warning --forwarded-allow-ips "" --no-control-socket \
      --graceful-timeout 20 --worker-tmp-dir /dev/shm "$@"
    ;;
  websockets)
    # The flags `make run` gives its uvicorn: the client address is Bazaar's to decide
    # (TRUSTED_PROXIES), and its own JSON access line replaces uvicorn's. Open websockets
    # get 20 s to close on SIGTERM, within the pod's termination grace period; the pages
    # reconnect to another pod. No permessage-deflate: it costs a compressor per socket and
    # a compression per socket per message.
    exec python -m uvicorn project.asgi:application --host 0.0.0.0 --port "${PORT:-8000}" \
      --log-level warning --no-proxy-headers --no-access-log --ws-per-message-deflate false \
      --timeout-graceful-shutdown 20 "$@"
    ;;
  worker)
    [ "$#" -eq 1 ] || usage
    exec python manage.py run_worker "$1"
    ;;
  dispatcher)
    exec python manage.py run_dispatcher "$@"
    ;;
  migrate)
    exec python manage.py migrate --no-input "$@"
    ;;
  manage)
    [ "$#" -ge 1 ] || usage
    exec python manage.py "$@"
    ;;
  healthcheck)
    # PID 1 is the process the container was started for: a worker is alive while its
    # heartbeat is fresh, a web or websockets server while /healthz answers; a dispatcher has no
    # heartbeat, so its being PID 1 at all is the check.
    # shellcheck disable=SC2046 # split PID 1's argv into words on purpose
    set -- $(tr '\0' ' ' </proc/1/cmdline)
    prev=""
    for arg in "$@"; do
      case "$prev:$arg" in
        run_worker:*) exec python manage.py worker_alive "$arg" ;;
        *:run_dispatcher) exit 0 ;;
      esac
      prev="$arg"
    done
    exec python scripts/container-healthz.py
    ;;
  *)
    usage
    ;;
esac
