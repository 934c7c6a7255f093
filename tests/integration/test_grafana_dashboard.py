"""deploy/grafana/bazaar.json is a dashboard Grafana can import, and every query in it names
only metrics that /metrics really exposes (a renamed metric would leave a panel empty)."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(settings.BASE_DIR) / "deploy" / "grafana" / "bazaar.json"

# What may appear in a query besides metric names: PromQL's functions, aggregations and
# keywords, and the label names the queries group or filter by.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "by", "without", "on", "ignoring",
    "rate", "irate", "increase", "histogram_quantile", "and", "or", "unless", "bool",
}  # fmt: skip
LABELS = {"route", "method", "status", "le", "queue", "task", "consumer"}
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}


def exposed_metric_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, []))
        names.update(sample.name for sample in family.samples)
    return names


def metric_names_in(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)  # label values
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors, $__rate_interval included
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return words - PROMQL_WORDS - LABELS


@pytest.fixture
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_the_dashboard_is_a_grafana_dashboard_with_the_panels_operators_need(dashboard):
    assert dashboard["uid"]
    assert dashboard["title"] == "Bazaar"
    assert isinstance(dashboard["schemaVersion"], int)
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["type"] in {"timeseries", "stat"}
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["targets"]
        assert all(target["expr"] for target in panel["targets"])
    queries = " ".join(target["expr"] for panel in panels for target in panel["targets"])
    for needed in (
        "rate(bazaar_http_requests_total",
        'status=~"5.."',
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "histogram_quantile(0.99,",
        "bazaar_websockets_open",
        "bazaar_task_queue_depth",
        "bazaar_task_failures_total",
        "bazaar_workers_alive",
        "bazaar_dispatchers_alive",
        "bazaar_outbox_pending",
    ):
        assert needed in queries, needed


@pytest.mark.django_db
def test_every_query_names_only_metrics_that_metrics_exposes(dashboard, client):
    client.get("/healthz")  # so the request families have samples too
    scraped = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert scraped.status_code == 200
    exposed = exposed_metric_names(scraped.content.decode())

    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names = metric_names_in(target["expr"])
            assert names, target["expr"]
            assert names <= exposed, f"{panel['title']}: {sorted(names - exposed)} not exposed"


def test_a_misspelt_metric_is_caught():
    exposed = {"bazaar_http_requests_total"}
    assert metric_names_in("sum(rate(bazaar_http_request_total[5m]))") - exposed == {
        "bazaar_http_request_total"
    }
