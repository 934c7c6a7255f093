"""audit.record: what an entry holds, what it never holds, and the security log line."""

import json
import logging

import pytest

from project import request_context
from project.audit import services as audit
from project.audit.models import AuditEntry
from tests import factories

pytestmark = pytest.mark.django_db


def test_record_stores_actor_vendor_target_changes_and_request_context():
    # given a vendor owner acting on a product, inside a request with an id, an address and an agent
    owner = factories.UserFactory(email="owner@example.com")
    product = factories.ProductFactory(name="Blue mug")
    ids = [
        request_context.current_request_id.set("req-123"),
        request_context.current_client_ip.set("203.0.113.9"),
        request_context.current_user_agent.set("Firefox/140"),
    ]
    try:
        # when the change is recorded
        entry = audit.record(
            "product.price_changed",
            actor=owner,
            vendor=product.vendor,
            target=product,
            changes={"price": ["9.50", "12.00"]},
        )
    finally:
        request_context.current_user_agent.reset(ids[2])
        request_context.current_client_ip.reset(ids[1])
        request_context.current_request_id.reset(ids[0])

    # then the stored row says who, where, what and how
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.action == "product.price_changed"
    assert (stored.actor_id, stored.actor_email) == (owner.pk, "owner@example.com")
    assert (stored.vendor_id, stored.vendor_name) == (product.vendor.pk, product.vendor.name)
    assert (stored.target_type, stored.target_id, stored.target_repr) == (
        "shop.product",
        str(product.pk),
        "Blue mug",
    )
    assert stored.changes == {"price": ["9.50", "12.00"]}
    assert (stored.ip, stored.user_agent, stored.request_id) == (
        "203.0.113.9",
        "Firefox/140",
        "req-123",
    )


def test_record_never_stores_secret_values():
    # when changes name a password, a token, a TOTP secret and card data
    entry = audit.record(
        "admin.changed",
        changes={
            "password": ["argon2$old", "argon2$new"],
            "reset_token": ["a", "b"],
            "totp_secret": ["x", "y"],
            "card_number": ["4242424242424242", "4000000000000002"],
            "payout_details": ["DE89 3704", "DE44 5001"],
            "full_name": ["Ann", "Anna"],
        },
    )

    # then only the harmless field keeps its values
    assert entry.changes == {
        "password": ["[redacted]", "[redacted]"],
        "reset_token": ["[redacted]", "[redacted]"],
        "totp_secret": ["[redacted]", "[redacted]"],
        "card_number": ["[redacted]", "[redacted]"],
        "payout_details": ["[redacted]", "[redacted]"],
        "full_name": ["Ann", "Anna"],
    }


def test_record_refuses_an_unknown_action():
    with pytest.raises(ValueError, match="Unknown audit action"):
        audit.record("auth.teleported")
    assert AuditEntry.objects.count() == 0


def test_record_writes_one_security_log_line_without_the_email(caplog):
    # given a user signing in from an address
    user = factories.UserFactory(email="ann@example.com")
    token = request_context.current_client_ip.set("198.51.100.7")
    try:
        with caplog.at_level(logging.INFO, logger="bazaar.security"):
            # when the sign-in is recorded
            audit.record("auth.login", actor=user)
    finally:
        request_context.current_client_ip.reset(token)

    # then exactly one line on bazaar.security names the action, the ids and the address
    lines = [r for r in caplog.records if r.name == "bazaar.security"]
    assert len(lines) == 1
    message = lines[0].getMessage()
    assert message == f"audit auth.login actor={user.pk} vendor=- ip=198.51.100.7 target=-"
    assert "ann@example.com" not in message


def test_sign_ins_failures_sign_outs_and_resets_appear_as_json_security_lines(
    client, json_logs, django_capture_on_commit_callbacks
):
    # given an account
    user = factories.UserFactory(email="ann@example.com")
    remote = {"REMOTE_ADDR": "198.51.100.8", "HTTP_X_REQUEST_ID": "req-log-1"}

    # when it fails once, signs in, signs out and asks for a password reset
    client.post("/accounts/login/", {"email": user.email, "password": "wrong-one-1"}, **remote)
    client.post("/accounts/login/", {"email": user.email, "password": factories.PASSWORD}, **remote)
    client.post("/accounts/logout/", **remote)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/password/reset/", {"email": user.email}, **remote)

    # then each is one JSON line on bazaar.security with the ids and the address, no email
    lines = [line for line in json_logs() if line["logger"] == "bazaar.security"]
    assert [line["security"]["audit_action"] for line in lines] == [
        "auth.login_failed",
        "auth.login",
        "auth.logout",
        "auth.password_reset_requested",
    ]
    for line in lines:
        assert (line["request_id"], line["client_ip"]) == ("req-log-1", "198.51.100.8")
        assert line["security"]["client_ip"] == "198.51.100.8"
        assert "ann@example.com" not in json.dumps(line)
    assert lines[1]["security"]["actor_id"] == user.pk
    assert lines[0]["security"]["actor_id"] is None
