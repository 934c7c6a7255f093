"""One JSON access line per request, the request's id, user and address on every line it
writes (Django's own 4xx lines included), and secrets masked wherever they appear."""

import re

import pytest
from django.urls import reverse

from project.logging import mask

pytestmark = pytest.mark.django_db


def lines_of(json_logs, request_id: str) -> list[dict]:
    return [line for line in json_logs() if line["request_id"] == request_id]


def test_each_request_writes_one_json_access_line(client, shopper, json_logs):
    client.force_login(shopper)

    response = client.get(reverse("shop:order_list"), headers={"X-Request-ID": "trace-1"})

    assert response.status_code == 200
    (access,) = [
        line for line in lines_of(json_logs, "trace-1") if line["logger"] == "bazaar.access"
    ]
    assert access["level"] == "INFO"
    assert access["message"] == "GET /orders/ 200"
    assert access["user_id"] == shopper.pk
    assert access["client_ip"] == "127.0.0.1"
    http = access["http"]
    assert {key: http[key] for key in ("route", "pattern", "method", "path", "status")} == {
        "route": "shop:order_list",
        "pattern": "orders/",
        "method": "GET",
        "path": "/orders/",
        "status": 200,
    }
    assert isinstance(http["duration_ms"], float)
    assert http["duration_ms"] >= 0


def test_a_sign_in_request_is_logged_with_the_user_it_signed_in(client, shopper, json_logs):
    from tests import factories

    client.post(
        reverse("accounts:login"),
        {"email": shopper.email, "password": factories.PASSWORD},
        headers={"X-Request-ID": "trace-login"},
    )

    (access,) = [
        line for line in lines_of(json_logs, "trace-login") if line["logger"] == "bazaar.access"
    ]
    assert access["http"]["status"] == 302
    assert access["user_id"] == shopper.pk


def test_the_not_found_line_django_writes_carries_the_request_id_user_and_address(
    client, shopper, json_logs
):
    client.force_login(shopper)

    response = client.get("/no-such-page/", headers={"X-Request-ID": "trace-404"})

    assert response.status_code == 404
    by_logger = {line["logger"]: line for line in lines_of(json_logs, "trace-404")}
    assert set(by_logger) == {"bazaar.access", "django.request"}
    not_found = by_logger["django.request"]
    assert not_found["message"] == "Not Found: /no-such-page/"
    assert not_found["level"] == "WARNING"
    assert not_found["user_id"] == shopper.pk
    assert not_found["client_ip"] == "127.0.0.1"
    assert by_logger["bazaar.access"]["http"]["route"] is None


def test_a_4xx_response_returned_by_a_view_is_logged_with_the_request_id(client, json_logs):
    """Django logs a view's 4xx response after every middleware returned (the reason most
    of them lacked the id): the line takes it from the request."""
    response = client.post(
        reverse("csp_report"),
        data="{}",
        content_type="text/plain",
        headers={"X-Request-ID": "trace-415"},
    )

    assert response.status_code == 415
    loggers = [line["logger"] for line in lines_of(json_logs, "trace-415")]
    assert sorted(loggers) == ["bazaar.access", "django.request"]


def test_tokens_in_paths_are_masked_in_the_access_line(client, json_logs):
    client.get(
        "/accounts/verify/c2VjcmV0LXZlcmlmaWNhdGlvbi10b2tlbg/", headers={"X-Request-ID": "v"}
    )
    client.get("/accounts/reset/MTIz/c7k2m9-0123456789abcdef/", headers={"X-Request-ID": "r"})
    client.get("/backoffice/invitations/inv-secret-token-42/", headers={"X-Request-ID": "i"})

    output = "\n".join(str(line) for line in json_logs())
    for secret in [
        "c2VjcmV0LXZlcmlmaWNhdGlvbi10b2tlbg",
        "c7k2m9-0123456789abcdef",
        "inv-secret-token-42",
    ]:
        assert secret not in output
    paths = {
        line["request_id"]: line["http"]["path"]
        for line in json_logs()
        if line["logger"] == "bazaar.access"
    }
    assert paths == {
        "v": "/accounts/verify/[masked]/",
        "r": "/accounts/reset/[masked]/[masked]/",
        "i": "/backoffice/invitations/[masked]/",
    }


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Welcome mail to jane.doe+shop@example.co.uk failed", "Welcome mail to [email] failed"),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            "Authorization: Bearer [masked]",
        ),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl seen", "jwt [masked] seen"),
        ("GET /accounts/verify/abcDEF123/ 200", "GET /accounts/verify/[masked]/ 200"),
        ("GET /accounts/verify/sent/ 200", "GET /accounts/verify/sent/ 200"),
        (
            "link https://shop.example/accounts/reset/MQ/abc-123/ sent",
            "link https://shop.example/accounts/reset/[masked]/[masked]/ sent",
        ),
        ("GET /accounts/login/unlock/tok123/ 302", "GET /accounts/login/unlock/[masked]/ 302"),
        (
            "POST /backoffice/team/invitations/12/revoke/ 302",
            "POST /backoffice/team/invitations/12/revoke/ 302",
        ),
        ("next=/x?token=abc123&page=2", "next=/x?token=[masked]&page=2"),
        (
            '{"password": "hunter2", "email_code": "123456"}',
            '{"password": "[masked]", "email_code": "[masked]"}',
        ),
        ("card 4242 4242 4242 4242 declined", "card [card] declined"),
    ],
)
def test_secrets_are_masked_anywhere_in_a_message(text, masked):
    assert mask(text) == masked


def test_the_request_id_header_is_replaced_when_it_is_not_sane(client, json_logs):
    response = client.get(reverse("healthz"), headers={"X-Request-ID": "bad id\nwith newline"})

    generated = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert lines_of(json_logs, generated)
