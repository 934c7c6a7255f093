"""Every email kind: one layout with the shop's name, a button for its main action whose link
is absolute (under SITE_URL) and also in the plain-text part, and no relative link at all."""

import datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core import mail

from project import emails

TEMPLATES = Path(settings.BASE_DIR) / "templates" / "emails"


def url(path: str) -> str:
    return emails.absolute_url(path)


VENDOR = SimpleNamespace(name="Oak & Ash")
LINE = SimpleNamespace(
    product_name="Walnut board",
    vendor=VENDOR,
    quantity=2,
    line_total=Decimal("49.00"),
    cancel_reason="Out of stock",
)
ORDER = SimpleNamespace(
    number="BZ-000042",
    total=Decimal("58.00"),
    shipping_lines=["Sam Shopper", "1 Long Road", "Leeds LS1 1AA", "GB"],
)
PAYMENT = SimpleNamespace(amount=Decimal("58.00"), card_brand="Visa", card_last4="4242")
VENDOR_CONTEXT = {
    "vendor": VENDOR,
    "note": "Photos missing",
    "backoffice_url": url("/backoffice/"),
    "apply_url": url("/backoffice/apply/"),
}
ORDER_CONTEXT = {"order": ORDER, "lines": [LINE], "order_url": url("/orders/42/")}

# template -> (the button's context key, the context)
KINDS = {
    "data_export_ready": (
        "download_url",
        {
            "download_url": url("/account/export/7/"),
            "expires_at": datetime.datetime.now(datetime.UTC),
        },
    ),
    "late_capture_refunded": (
        "order_url",
        {**ORDER_CONTEXT, "payment": PAYMENT, "refund": PAYMENT, "order_paid": True},
    ),
    "login_unlock": (
        "unlock_url",
        {
            "unlock_url": url("/accounts/unlock/abc/"),
            "reset_url": url("/accounts/reset/"),
            "valid_for": "1 hour",
        },
    ),
    "order_confirmation": ("order_url", ORDER_CONTEXT),
    "order_refunded": ("order_url", {**ORDER_CONTEXT, "payment": PAYMENT, "refund": PAYMENT}),
    "password_reset": (
        "reset_url",
        {"reset_url": url("/accounts/reset/x/y/"), "valid_for": "1 hour"},
    ),
    "payment_failed": (
        "order_url",
        {**ORDER_CONTEXT, "reason": "Declined", "cancelled": False, "cart_url": url("/cart/")},
    ),
    "registration_attempt": (
        "login_url",
        {"login_url": url("/accounts/login/"), "reset_url": url("/accounts/reset/")},
    ),
    "vendor_approved": ("backoffice_url", VENDOR_CONTEXT),
    "vendor_invitation": (
        "accept_url",
        {
            "vendor": VENDOR,
            "invitation": SimpleNamespace(get_role_display="Staff"),
            "inviter": "Olive Owner",
            "accept_url": url("/backoffice/invitations/tok/"),
            "valid_for": "7 days",
        },
    ),
    "vendor_item_cancelled": ("order_url", {**ORDER_CONTEXT, "line": LINE}),
    "vendor_new_order": ("order_url", {**ORDER_CONTEXT, "name": "Oak & Ash", "vendor_total": 49}),
    "vendor_received": ("backoffice_url", VENDOR_CONTEXT),
    "vendor_reinstated": ("backoffice_url", VENDOR_CONTEXT),
    "vendor_rejected": ("apply_url", VENDOR_CONTEXT),
    "vendor_shipment": (
        "order_url",
        {
            **ORDER_CONTEXT,
            "shipment": SimpleNamespace(vendor=VENDOR, carrier="DHL", tracking_number="JD0001"),
        },
    ),
    "vendor_suspended": ("backoffice_url", VENDOR_CONTEXT),
    "verify_email": (
        "verify_url",
        {"verify_url": url("/accounts/verify/tok/"), "valid_for": "3 days"},
    ),
}


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.buttons: list[str] = []

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if "href" in found:
            self.hrefs.append(found["href"])
            if tag == "a" and "button" in (found.get("class") or "").split():
                self.buttons.append(found["href"])


def send(template: str, context: dict) -> mail.EmailMessage:
    mail.outbox.clear()
    emails.send_templated_email(
        to="sam@example.com", template=template, subject="Subject line", context=context
    )
    [message] = mail.outbox
    return message


def links(message) -> Links:
    parser = Links()
    parser.feed(message.alternatives[0].content)
    return parser


def test_every_email_template_is_covered():
    templates = {path.stem for path in TEMPLATES.glob("*.html")} - {
        "layout",
        "button",
        "line_thumb",
    }
    assert templates == set(KINDS) | {"twofactor_code"}


@pytest.mark.parametrize("template", sorted(KINDS))
def test_the_button_links_to_an_absolute_url_also_in_the_text_part(template):
    key, context = KINDS[template]

    message = send(template, context)

    found = links(message)
    assert found.buttons == [context[key]]
    assert found.buttons[0].startswith(f"{settings.SITE_URL}/")
    assert context[key] in message.body


@pytest.mark.parametrize("template", [*sorted(KINDS), "twofactor_code"])
def test_every_link_is_absolute_and_the_shop_is_named(template):
    _, context = KINDS.get(template, (None, {"code": "123456", "valid_for": "10 minutes"}))

    message = send(template, context)

    html = message.alternatives[0].content
    assert all(href.startswith(f"{settings.SITE_URL}/") for href in links(message).hrefs)
    assert "max-width:600px" in html
    assert ">Bazaar</a>" in html
    assert "Bazaar, a marketplace of independent shops" in message.body


def test_a_sign_in_code_is_shown_large_without_a_button():
    message = send("twofactor_code", {"code": "123456", "valid_for": "10 minutes"})

    assert links(message).buttons == []
    assert "font-size:28px" in message.alternatives[0].content
    assert "123456" in message.body
