"""Where each millisecond of a page goes: a profile per page, by category.

    .venv/bin/python bench/pages_profile.py [--requests 50] [--page search] [--html]

Serves each page of the page benchmark (bench/pages_bench.py: the same data, settings,
cookies and references) in this one process through Django's own request handler, with every
middleware, the production shape (PostgreSQL, Redis cache and sessions, DEBUG off) and the
JSON access log (written to var/bench/profile-access.log). Each page is timed over --requests
requests, then sampled by pyinstrument over as many more; a sample's time goes to the
innermost category on its call stack, so the SQL a
template triggers counts as SQL, and a Redis read inside the session store as Redis. Besides
the profile, exact per-request counts: queries and their time (Django's execute wrapper) and
Redis commands.

No server and no load: the figures hold on a busy machine (CPU time per request is printed
beside wall time), and the ASGI/WSGI server's own cost is not in them (pages_bench measures
that). `--html` writes pyinstrument's call tree per page to var/bench/profile-<page>.html;
`--json FILE` writes the figures. Runs against another checkout with BENCH_APP_DIR=/path.
"""

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import pages_setup

# The first matching rule names a frame's category; a sample counts for the innermost frame on
# its stack that has one. Paths are matched with "/" separators.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("sql", ("/psycopg/", "/psycopg_pool/", "/psycopg_binary/", "/django/db/backends/")),
    ("orm", ("/django/db/",)),
    ("redis", ("/redis/", "/django/core/cache/", "/project/redis_cache.py")),
    ("sessions", ("/django/contrib/sessions/", "/project/sessions.py")),
    ("logging", ("/logging/", "/project/logging.py", "/json/")),
    ("templates", ("/django/template/", "/django/templatetags/", "/templatetags/")),
    ("forms", ("/django/forms/",)),
    ("middleware", ("middleware", "/project/metrics.py", "/prometheus_client/")),
    ("auth", ("/django/contrib/auth/",)),
    ("url routing", ("/django/urls/",)),
    ("request/response", ("/django/core/handlers/", "/django/http/", "/django/core/signals")),
    ("test client", ("/django/test/",)),
    ("app code", ("/project/", "/shop/", "/accounts/", "/backoffice/")),
]
CATEGORY_NAMES = [name for name, _ in CATEGORIES] + ["other"]
# Not part of a page's cost: the test client building the request and reading the response.
NOT_SERVED = {"test client"}


def category_of(file_path: str | None) -> str | None:
    if not file_path:
        return None
    path = file_path.replace("\\", "/")
    for name, needles in CATEGORIES:
        if any(needle in path for needle in needles):
            return name
    return None


def attribute(frame, inherited: str, totals: Counter) -> None:
    """Add each frame's own time to the innermost category above (or at) it."""
    category = category_of(frame.file_path) or inherited
    if not frame.children:
        totals[category] += frame.time
    for child in frame.children:
        attribute(child, category, totals)
    own = frame.time - sum(child.time for child in frame.children)
    if frame.children and own > 0:
        totals[category] += own


class RedisCounter:
    """Counts Redis commands sent by this process (cache and sessions)."""

    def __init__(self) -> None:
        from redis.connection import AbstractConnection

        self.count = 0
        self._original = AbstractConnection.send_command

        def send_command(connection, *args, **kwargs):
            self.count += 1
            return self._original(connection, *args, **kwargs)

        AbstractConnection.send_command = send_command


class QueryTimer:
    """Django's execute wrapper: the number and time of this request's queries."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.count += 1


def send(client, page: pages_setup.Page, visitor: pages_setup.Visitor):
    client.cookies.clear()
    for part in visitor.cookie_for(page).split("; "):
        name, _, value = part.partition("=")
        client.cookies[name] = value
    if page.method == "POST":
        return client.post(
            page.path,
            data=page.body(visitor),
            content_type="application/x-www-form-urlencoded",
            headers=page.headers,
        )
    return client.get(page.path, headers=page.headers)


def profile_page(client, page, visitor, *, requests: int, html_dir: Path | None) -> dict:
    from django.db import connection
    from pyinstrument import Profiler

    redis = RedisCounter.instance
    for _ in range(5):  # warm: templates compiled, pools filled, caches primed
        response = send(client, page, visitor)
        if response.status_code != 200:
            raise SystemExit(f"{page.name} ({visitor.name}) answered {response.status_code}")
    # Timed without the profiler (it slows small calls most), then sampled for the shares.
    queries = QueryTimer()
    walls, cpus = [], []
    redis_before = redis.count
    with connection.execute_wrapper(queries):
        for _ in range(requests):
            started, cpu = time.perf_counter(), time.process_time()
            send(client, page, visitor)
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
    redis_commands = (redis.count - redis_before) / requests
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    for _ in range(requests):
        send(client, page, visitor)
    profiler.stop()
    session = profiler.last_session
    totals: Counter = Counter()
    attribute(session.root_frame(), "other", totals)
    sampled = sum(totals.values()) or 1.0
    wall_ms = statistics.mean(walls) * 1000
    served = sum(v for k, v in totals.items() if k not in NOT_SERVED) / sampled
    if html_dir is not None:
        slug = f"{page.name}-{visitor.name}".replace(" ", "-").replace("(", "").replace(")", "")
        (html_dir / f"profile-{slug}.html").write_text(profiler.output_html())
    return {
        "page": page.name,
        "visitor": visitor.name,
        "requests": requests,
        "wall_ms": round(wall_ms, 2),
        "served_ms": round(wall_ms * served, 2),
        "cpu_ms": round(statistics.mean(cpus) * 1000, 2),
        "queries": queries.count / requests,
        "query_ms": round(queries.seconds * 1000 / requests, 2),
        "redis_commands": redis_commands,
        # Each category's share of the sampled time, scaled to the mean wall time per request.
        "ms": {name: round(wall_ms * totals[name] / sampled, 2) for name in CATEGORY_NAMES},
    }


def count_queries(scenario: pages_setup.Scenario) -> dict[tuple[str, str], int]:
    """Queries per request of every page and visitor (for the benchmark's table)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(enforce_csrf_checks=True)
    counts = {}
    for visitor in scenario.visitors:
        for page in scenario.pages:
            send(client, page, visitor)  # warm, as the server is
            with CaptureQueriesContext(connection) as captured:
                response = send(client, page, visitor)
            if response.status_code != 200:
                raise SystemExit(f"{page.name} ({visitor.name}) answered {response.status_code}")
            counts[(page.name, visitor.name)] = len(captured.captured_queries)
    return counts


def print_table(rows: list[dict]) -> None:
    shown = [n for n in CATEGORY_NAMES if n not in NOT_SERVED and any(r["ms"][n] for r in rows)]
    head = ["page", "visitor", "ms/req", "cpu", "queries", "sql ms", "redis"] + shown
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for row in rows:
        cells = [
            row["page"],
            row["visitor"],
            f"{row['served_ms']:.1f}",
            f"{row['cpu_ms']:.1f}",
            f"{row['queries']:g}",
            f"{row['query_ms']:.1f}",
            f"{row['redis_commands']:g}",
        ] + [f"{row['ms'][n]:.1f}" for n in shown]
        print(" | ".join(cells))
    print(
        "\nms/req: mean wall time per request, the test client's own share taken out; cpu: "
        "process CPU time per request; sql ms: time in the database driver per request "
        "(Django's execute wrapper); the other columns split ms/req by the innermost category "
        "on each sampled stack (orm: building queries and model objects; sql: driver and "
        "database)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="per page and visitor")
    parser.add_argument("--page", action="append", help="only pages whose name contains this")
    parser.add_argument("--visitor", choices=["anonymous", "signed in"])
    parser.add_argument("--html", action="store_true", help="call trees in var/bench/")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()

    pages_setup.VAR_DIR.mkdir(parents=True, exist_ok=True)
    pages_setup.ensure_database()
    pages_setup.configure("profile-access.log")
    from django.test import Client

    RedisCounter.instance = RedisCounter()
    scenario = pages_setup.seed()
    client = Client(enforce_csrf_checks=True)
    rows = []
    for visitor in scenario.visitors:
        if options.visitor and visitor.name != options.visitor:
            continue
        for page in scenario.pages:
            if options.page and not any(p in page.name for p in options.page):
                continue
            rows.append(
                profile_page(
                    client,
                    page,
                    visitor,
                    requests=options.requests,
                    html_dir=pages_setup.VAR_DIR if options.html else None,
                )
            )
            print(f"  profiled {page.name} ({visitor.name})", file=sys.stderr)
    print(f"Page profile of {pages_setup.APP_DIR} at {pages_setup.APP_COMMIT}:\n")
    print_table(rows)
    if options.json:
        options.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
