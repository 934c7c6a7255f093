"""CSP violation reports: accepted in both browser formats, logged as one masked JSON line
per violation, size-capped, rate-limited per client address, exempt from CSRF."""

import json

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

URL = "/csp-report/"

LEGACY_REPORT = {
    "csp-report": {
        "document-uri": "https://shop.example.com/accounts/verify/secret-token-123/",
        "referrer": "",
        "violated-directive": "script-src-elem",
        "effective-directive": "script-src-elem",
        "original-policy": "default-src 'none'; report-uri /csp-report/",
        "disposition": "enforce",
        "blocked-uri": "https://evil.example/x.js?mail=jane@example.com",
        "line-number": 12,
        "source-file": "https://shop.example.com/",
        "status-code": 200,
        "script-sample": "",
    }
}

REPORTING_API_BODY = [
    {
        "type": "csp-violation",
        "age": 10,
        "url": "https://shop.example.com/cart/",
        "user_agent": "Mozilla/5.0",
        "body": {
            "documentURL": "https://shop.example.com/cart/",
            "blockedURL": "inline",
            "effectiveDirective": "style-src-attr",
            "disposition": "enforce",
            "sourceFile": "https://shop.example.com/cart/",
            "lineNumber": 40,
            "columnNumber": 7,
            "statusCode": 200,
            "sample": "",
        },
    },
    {"type": "deprecation", "age": 1, "url": "https://shop.example.com/", "body": {}},
    {
        "type": "csp-violation",
        "age": 12,
        "url": "https://shop.example.com/",
        "body": {
            "documentURL": "https://shop.example.com/",
            "blockedURL": "eval",
            "effectiveDirective": "script-src",
        },
    },
]


def csp_lines(json_logs) -> list[dict]:
    return [line for line in json_logs() if line["logger"] == "bazaar.csp"]


def test_the_policy_names_the_report_endpoint_and_the_reporting_header(client):
    response = client.get(reverse("shop:home"))

    policy = response.headers["Content-Security-Policy"]
    assert "report-uri /csp-report/" in policy
    assert "report-to csp-endpoint" in policy
    assert response.headers["Reporting-Endpoints"] == 'csp-endpoint="/csp-report/"'
    assert reverse("csp_report") == URL


def test_a_report_uri_report_is_accepted_and_logged_masked_without_a_csrf_token(json_logs):
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        URL, data=json.dumps(LEGACY_REPORT), content_type="application/csp-report"
    )

    assert response.status_code == 204
    assert response.content == b""
    (line,) = csp_lines(json_logs)
    assert line["level"] == "WARNING"
    assert (
        line["message"]
        == "CSP violation: script-src-elem blocked https://evil.example/x.js?mail=[email]"
    )
    assert line["csp"] == {
        "document": "https://shop.example.com/accounts/verify/[masked]/",
        "directive": "script-src-elem",
        "violated": "script-src-elem",
        "blocked": "https://evil.example/x.js?mail=[email]",
        "source": "https://shop.example.com/",
        "line": 12,
        "disposition": "enforce",
        "sample": "",
        "status": 200,
    }
    assert line["client_ip"] == "127.0.0.1"


def test_reporting_api_reports_are_accepted_one_line_per_violation(json_logs):
    response = Client(enforce_csrf_checks=True).post(
        URL, data=json.dumps(REPORTING_API_BODY), content_type="application/reports+json"
    )

    assert response.status_code == 204
    assert [line["csp"] for line in csp_lines(json_logs)] == [
        {
            "document": "https://shop.example.com/cart/",
            "directive": "style-src-attr",
            "blocked": "inline",
            "source": "https://shop.example.com/cart/",
            "line": 40,
            "column": 7,
            "disposition": "enforce",
            "sample": "",
            "status": 200,
        },
        {"document": "https://shop.example.com/", "directive": "script-src", "blocked": "eval"},
    ]


@pytest.mark.parametrize(
    ("content_type", "body", "status", "text"),
    [
        (
            "application/json",
            json.dumps(LEGACY_REPORT),
            415,
            "Send application/csp-report or application/reports+json.\n",
        ),
        ("application/csp-report", "not json", 400, "The body is not JSON.\n"),
        ("application/csp-report", "[]", 400, 'Expected {"csp-report": {...}}.\n'),
        ("application/reports+json", "{}", 400, "Expected a list of reports.\n"),
        (
            "application/reports+json",
            '[{"type": "deprecation", "body": {}}]',
            400,
            "No csp-violation report in the body.\n",
        ),
    ],
)
def test_other_bodies_are_refused_with_a_reason_and_nothing_logged(
    json_logs, content_type, body, status, text
):
    response = Client().post(URL, data=body, content_type=content_type)

    assert response.status_code == status
    assert response.content.decode() == text
    assert csp_lines(json_logs) == []


def test_a_report_over_the_size_cap_is_refused(json_logs, settings):
    settings.CSP_REPORT_MAX_BYTES = 1000
    report = {"csp-report": {**LEGACY_REPORT["csp-report"], "script-sample": "x" * 2000}}

    response = Client().post(URL, data=json.dumps(report), content_type="application/csp-report")

    assert response.status_code == 413
    assert response.content.decode() == "A report may be at most 1000 bytes.\n"
    assert csp_lines(json_logs) == []


def test_long_fields_are_shortened(json_logs):
    report = {"csp-report": {**LEGACY_REPORT["csp-report"], "script-sample": "y" * 900}}

    Client().post(URL, data=json.dumps(report), content_type="application/csp-report")

    assert csp_lines(json_logs)[0]["csp"]["sample"] == "y" * 500


def test_reports_are_rate_limited_per_client_address(json_logs, settings):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "csp_report_address": {"limit": 2, "window": 60},
    }
    body = json.dumps(LEGACY_REPORT)

    responses = [
        Client().post(URL, data=body, content_type="application/csp-report") for _ in range(3)
    ]
    elsewhere = Client(REMOTE_ADDR="198.51.100.9").post(
        URL, data=body, content_type="application/csp-report"
    )

    assert [response.status_code for response in responses] == [204, 204, 429]
    assert 1 <= int(responses[2].headers["Retry-After"]) <= 60
    assert elsewhere.status_code == 204
    assert len(csp_lines(json_logs)) == 3


def test_only_post_is_accepted(client):
    assert client.get(URL).status_code == 405


def test_the_development_policy_names_the_dev_servers_websocket_origins(client):
    policy = client.get(reverse("shop:home")).headers["Content-Security-Policy"]

    connect_src = next(part for part in policy.split("; ") if part.startswith("connect-src"))
    assert connect_src == "connect-src 'self' ws://127.0.0.1:8000 ws://localhost:8000"
    assert "wss:" not in policy
    assert "ws: " not in policy
