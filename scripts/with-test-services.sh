#!/usr/bin/env bash
# Run a command (the test suite, a benchmark) against real PostgreSQL and Redis:
#   1. those named by DATABASE_URL / REDIS_URL, else
#   2. the local servers on their standard ports, else
#   3. private throwaway instances started from the installed server binaries
#      (stopped again when the command ends).
# Never falls back to SQLite: with none of these it stops and says what to install.
set -euo pipefail
py=.venv/bin/python
throwaway_dir=""
cleanup() {
  if [ -n "$throwaway_dir" ]; then
    [ -f "$throwaway_dir/redis.pid" ] && kill "$(cat "$throwaway_dir/redis.pid")" 2>/dev/null || true
    [ -d "$throwaway_dir/pgdata" ] && as_postgres "$pg_bin/pg_ctl" -D "$throwaway_dir/pgdata" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$throwaway_dir"
  fi
}
trap cleanup EXIT

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postgres_answers() {
  "$py" - "$1" <<'PY'
import sys
import psycopg
from psycopg import sql
url = sys.argv[1]
try:
    psycopg.connect(url, connect_timeout=3).close()
except psycopg.OperationalError as error:
    if "does not exist" not in str(error):
        sys.exit(1)
    # The server answers but the database is missing: create it.
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name.split("?")[0])))
PY
}

redis_answers() {
  "$py" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=3).ping()' "$1" 2>/dev/null
}

need_dir() { [ -n "$throwaway_dir" ] || { throwaway_dir=$(mktemp -d /tmp/bazaar-test-services.XXXXXX); chmod 755 "$throwaway_dir"; }; }

# --- PostgreSQL -------------------------------------------------------------
if [ -z "${DATABASE_URL:-}" ]; then
  DATABASE_URL="postgres://postgres@127.0.0.1:5432/bazaar"
  if ! postgres_answers "$DATABASE_URL" 2>/dev/null; then
    initdb=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$initdb" ] || initdb=$(command -v initdb || true)
    if [ -z "$initdb" ]; then
      echo "No PostgreSQL answers on 127.0.0.1:5432 and no PostgreSQL server is installed." >&2
      echo "Install one (Debian: apt-get install postgresql) or set DATABASE_URL." >&2
      exit 2
    fi
    pg_bin=$(dirname "$initdb")
    need_dir
    echo "Starting a throwaway PostgreSQL on 127.0.0.1:55432"
    [ "$(id -u)" = 0 ] && chown postgres "$throwaway_dir"
    as_postgres "$initdb" -D "$throwaway_dir/pgdata" -A trust -U postgres >/dev/null
    as_postgres "$pg_bin/pg_ctl" -D "$throwaway_dir/pgdata" -w -l "$throwaway_dir/pg.log" \
      -o "-p 55432 -k $throwaway_dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    DATABASE_URL="postgres://postgres@127.0.0.1:55432/bazaar"
    postgres_answers "$DATABASE_URL"
  fi
fi
postgres_answers "$DATABASE_URL" || { echo "PostgreSQL at DATABASE_URL does not answer." >&2; exit 2; }

# --- Redis ----------------------------------------------------------------
if [ -z "${REDIS_URL:-}" ]; then
  REDIS_URL="redis://127.0.0.1:6379/1"
  if ! redis_answers "$REDIS_URL"; then
    if ! command -v redis-server >/dev/null; then
      echo "No Redis answers on 127.0.0.1:6379 and redis-server is not installed." >&2
      echo "Install it (Debian: apt-get install redis-server) or set REDIS_URL." >&2
      exit 2
    fi
    need_dir
    echo "Starting a throwaway Redis on 127.0.0.1:56379"
    redis-server --port 56379 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
      --pidfile "$throwaway_dir/redis.pid" --logfile "$throwaway_dir/redis.log" --dir "$throwaway_dir"
    REDIS_URL="redis://127.0.0.1:56379/1"
    for _ in $(seq 50); do redis_answers "$REDIS_URL" && break; sleep 0.1; done
  fi
fi
redis_answers "$REDIS_URL" || { echo "Redis at REDIS_URL does not answer." >&2; exit 2; }

export DATABASE_URL REDIS_URL
echo "Using PostgreSQL at ${DATABASE_URL%%\?*} and Redis at $REDIS_URL"
"$@"
