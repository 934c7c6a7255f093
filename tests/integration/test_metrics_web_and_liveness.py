"""/metrics reports HTTP requests (count and latency histogram by route and status), open
websockets by consumer, and the liveness of worker clusters and dispatchers: after real
requests, real websockets and real worker and dispatcher processes."""

import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect as websocket_connect

from tests import factories
from tests.fixtures import asgi_server, live_orders
from tests.fixtures.workers import q_workers, wait_for  # noqa: F401 - the fixture


def scrape_text(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: Client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    return scrape_text(response.content.decode())


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- One process (the test client): counts and the histogram -----------------------------


@pytest.mark.django_db
def test_requests_are_counted_by_route_name_and_status_with_a_latency_histogram(client):
    before = scrape(client)

    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/p/no-such-product-9f3a/").status_code == 404
    assert client.get("/no/such/page/7c1e/").status_code == 404
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"route": "healthz", "method": "GET"}
    assert delta("bazaar_http_requests_total", **ok, status="200") == 3
    assert delta("bazaar_http_request_duration_seconds_count", **ok) == 3
    assert delta("bazaar_http_request_duration_seconds_bucket", **ok, le="+Inf") == 3
    assert delta("bazaar_http_request_duration_seconds_bucket", **ok, le="10.0") == 3
    assert delta("bazaar_http_request_duration_seconds_sum", **ok) > 0
    # A product page that does not exist counts under its pattern's name, never its path.
    product = {"route": "shop:product", "method": "GET", "status": "404"}
    assert delta("bazaar_http_requests_total", **product) == 1
    assert delta("bazaar_http_requests_total", route="unmatched", method="GET", status="404") == 1
    routes = {dict(labels).get("route") for _name, labels in after}
    assert not any(route and "/" in route and "<" not in route for route in routes)


# --- Several uvicorn workers: one scrape sees all of them ---------------------------------


@pytest.fixture(scope="module")
def two_worker_server(django_db_setup, tmp_path_factory):
    """uvicorn with 2 worker processes sharing a PROMETHEUS_MULTIPROC_DIR, as in production
    (started once for the module: the tests below only add to what it counts)."""
    tmp_path = tmp_path_factory.mktemp("two-workers")
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    server = asgi_server.AsgiServer(
        log=tmp_path / "uvicorn.log",
        workers=2,
        env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
    ).start()
    try:
        wait_for(lambda: _answers(server.url), timeout=30)
        yield server.url, metrics_dir
    finally:
        server.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def http_scrape(url: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:  # noqa: S310
        return scrape_text(response.read().decode())


def test_every_scrape_sums_the_requests_of_all_web_processes(two_worker_server, transactional_db):
    url, metrics_dir = two_worker_server
    base = value(http_scrape(url), "bazaar_http_requests_total", route="healthz", **GET_OK)

    # Which process accepts a connection is the kernel's choice: on a busy machine one may
    # take a long run of them, so ask until both have answered some (each keeps its own file).
    sent = 0
    while sent < 40 or (len(list(metrics_dir.glob("counter_*.db"))) < 2 and sent < 2000):
        assert _answers(url)
        sent += 1

    # Every scrape, whichever process answers it, reports the requests of both.
    assert len(list(metrics_dir.glob("counter_*.db"))) == 2
    for _ in range(4):
        samples = http_scrape(url)
        assert (
            value(samples, "bazaar_http_requests_total", route="healthz", **GET_OK) == base + sent
        )
        assert (
            value(
                samples, "bazaar_http_request_duration_seconds_count", route="healthz", method="GET"
            )
            == base + sent
        )


GET_OK = {"method": "GET", "status": "200"}


def test_an_open_websocket_raises_the_gauge_and_closing_it_lowers_it(
    two_worker_server, transactional_db
):
    url, _metrics_dir = two_worker_server
    shopper = factories.UserFactory()
    vendor = factories.VendorMembershipFactory().vendor
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)
    browser = Client()
    browser.force_login(shopper)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"

    def open_sockets() -> float:
        return value(http_scrape(url), "bazaar_websockets_open", consumer="OrderConsumer")

    assert open_sockets() == 0
    with websocket_connect(
        f"{url.replace('http', 'ws')}/ws/orders/{order.pk}/",
        origin=url,
        additional_headers={"Cookie": cookie},
        open_timeout=10,
    ):
        assert wait_for(lambda: open_sockets() == 1, timeout=5)
    assert wait_for(lambda: open_sockets() == 0, timeout=5)


# --- Liveness of workers and dispatchers ----------------------------------------------------

BEAT_FAST = {"LIVENESS_HEARTBEAT_SECONDS": "0.2"}


def test_a_running_worker_is_alive_and_a_stopped_one_shows_stale(q_workers, client, settings):  # noqa: F811
    settings.LIVENESS_STALE_SECONDS = 2
    q_workers.start("default", **BEAT_FAST)

    samples = q_workers.wait_for(
        lambda: (
            (s := scrape(client)) and value(s, "bazaar_workers_alive", queue="default") == 1 and s
        ),
        timeout=15,
    )
    assert value(samples, "bazaar_worker_heartbeat_age_seconds", queue="default") < 2
    assert value(samples, "bazaar_workers_alive", queue="critical") == 0

    q_workers.stop("default")
    stopped_at = time.monotonic()
    samples = wait_for(
        lambda: (
            (s := scrape(client)) and value(s, "bazaar_workers_alive", queue="default") == 0 and s
        ),
        timeout=10,
    )
    assert time.monotonic() - stopped_at < 5
    assert value(samples, "bazaar_worker_heartbeat_age_seconds", queue="default") > 2


def test_a_running_dispatcher_is_alive_and_a_stopped_one_shows_stale(
    transactional_db, client, settings, tmp_path: Path
):
    settings.LIVENESS_STALE_SECONDS = 2
    process = asgi_server.start_dispatcher(
        tmp_path / "dispatcher.log", "--poll", "0.1", **BEAT_FAST
    )
    try:
        samples = wait_for(
            lambda: (s := scrape(client)) and value(s, "bazaar_dispatchers_alive") == 1 and s,
            timeout=20,
        )
        assert value(samples, "bazaar_dispatcher_heartbeat_age_seconds") < 2
    finally:
        asgi_server.stop(process)
    samples = wait_for(
        lambda: (s := scrape(client)) and value(s, "bazaar_dispatchers_alive") == 0 and s,
        timeout=10,
    )
    assert value(samples, "bazaar_dispatcher_heartbeat_age_seconds") > 2
