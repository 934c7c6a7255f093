#!/bin/sh
# The container image's entrypoint: one image, the process chosen at run time.
#
#   web [uvicorn options]   uvicorn serving HTTP and websockets on port 8000
#   worker <queue>          the supervised Django-Q2 cluster of one queue (run_worker)
#   dispatcher              the domain-event dispatcher (run_dispatcher)
#   migrate                 apply migrations as the owner role (DATABASE_MIGRATE_URL)
#   manage <command> ...    any management command, e.g. `manage createsuperuser`
#   healthcheck             the image's HEALTHCHECK: checks whatever PID 1 runs
#
# Every process is exec'd, so it is PID 1 and receives the SIGTERM Docker or Kubernetes
# sends; each stops gracefully on it (docs/supervision.md).
set -eu
cd "$(dirname "$0")/.."

usage() {
  echo "usage: $0 web|worker <queue>|dispatcher|migrate|manage <command>...|healthcheck" >&2
  exit 64
}

role="${1:-web}"
[ "$#" -gt 0 ] && shift
case "$role" in
  web)
    # The same flags as `make run` (scripts/run.sh): the client address is Bazaar's to
    # decide (TRUSTED_PROXIES), and its own JSON access line replaces uvicorn's, which
    # would log verification and reset links in full. Open websockets get 20 s to close
    # on SIGTERM, within the pod's termination grace period. No permessage-deflate: it costs a
    # compressor per socket and a compression per socket per message.
    exec python -m uvicorn project.asgi:application --host 0.0.0.0 --port 8000 \
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
    # heartbeat is fresh, a web process while /healthz answers; a dispatcher has no
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
