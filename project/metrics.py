"""What /metrics reports about the web processes themselves: HTTP requests (a counter and a
latency histogram, by route) and open websockets (a gauge, by consumer), beside the task,
outbox and liveness metrics computed from the database at scrape time.

Several processes: production runs several uvicorn workers per pod, and a scrape reaches
one of them. With PROMETHEUS_MULTIPROC_DIR set (it must be in the environment before the
process starts, and emptied when the pod starts), prometheus-client's multiprocess mode
keeps each process's values in a memory-mapped file in that directory, and a scrape sums
the files of all processes: counting a request stays an in-memory update (tens of
microseconds at worst, no network round trip; a Redis counter would cost a round trip per
request and fail with Redis). Without it (`make run`, one process, and the
tests) the values live in the process. Either way a counter never goes backwards while the
pod lives; a websocket gauge counts only live processes (`livesum`), and a scrape first
drops the gauge files of processes that have died.

The route label is the resolved URL pattern's name (e.g. `shop:product_detail`), never the
raw path, so the label's values are bounded by the URL conf.
"""

import contextlib
import glob
import os
import re
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Gauge, Histogram, multiprocess
from prometheus_client.registry import CollectorRegistry

from project.background import liveness, monitoring

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# registry=None: registered per scrape (single process) or read from the files (several).
HTTP_REQUESTS = Counter(
    "bazaar_http_requests",
    "HTTP requests answered, by route (URL pattern name), method and status code",
    ["route", "method", "status"],
    registry=None,
)
HTTP_LATENCY = Histogram(
    "bazaar_http_request_duration_seconds",
    "Time to answer an HTTP request, through every middleware, by route and method",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)
WEBSOCKETS_OPEN = Gauge(
    "bazaar_websockets_open",
    "Websocket connections accepted and still open, by consumer",
    ["consumer"],
    multiprocess_mode="livesum",
    registry=None,
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match.route
    if request.path.startswith(settings.STATIC_URL):
        return "static"  # answered by WhiteNoise before URL resolution
    return "unmatched"  # a 404, or an answer before resolution (a redirect to HTTPS)


class RequestMetricsMiddleware:
    """Counts each request and observes its duration (first in MIDDLEWARE, so the duration
    covers every other middleware). A method outside the usual ones counts as "other"."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in _METHODS else "other"
        key = (route_of(request), method, response.status_code)
        children = _children.get(key)
        if children is None:
            children = _children[key] = (
                HTTP_LATENCY.labels(key[0], method),
                HTTP_REQUESTS.labels(key[0], method, str(key[2])),
            )
        latency, requests = children
        latency.observe(time.perf_counter() - started)
        requests.inc()
        return response


# The labelled children by (route, method, status): `labels()` costs more than the update
# itself, and the keys are bounded by the URL conf.
_children: dict[tuple[str, str, int], tuple] = {}


def websocket_opened(consumer: str) -> None:
    WEBSOCKETS_OPEN.labels(consumer).inc()


def websocket_closed(consumer: str) -> None:
    WEBSOCKETS_OPEN.labels(consumer).dec()


class _ProcessMetrics:
    """This process's own metrics, when there is no multiprocess directory."""

    def collect(self):
        for metric in (HTTP_REQUESTS, HTTP_LATENCY, WEBSOCKETS_OPEN):
            yield from metric.collect()


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def _forget_dead_processes(path: str) -> None:
    """Remove the live-gauge files of processes that are gone (a uvicorn worker that was
    restarted), so their websockets stop counting."""
    pids = set()
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        found = _LIVE_GAUGE_FILE.search(os.path.basename(name))
        if found:
            pids.add(int(found.group(1)))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path)
        except PermissionError:
            continue  # alive, someone else's


def scrape_registry(stats: dict[str, dict] | None = None) -> CollectorRegistry:
    """Everything /metrics reports: tasks, outbox and liveness (from the database), and the
    web processes' requests and websockets (from all of them)."""
    registry = monitoring.build_registry(stats)
    registry.register(liveness.LivenessCollector())
    path = multiprocess_dir()
    if path:
        with contextlib.suppress(OSError):
            _forget_dead_processes(path)
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ProcessMetrics())
    return registry
