"""HEAD is answered wherever GET is: every URL of the shop, the account pages and the
backoffice, walked from the URLconf with sample ids, gives the same status to HEAD as to GET
and no body (Django's admin is its own and is left out)."""

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from shop.models import OrderStatus
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor

pytestmark = pytest.mark.django_db


def _named_patterns(patterns=None, namespace=""):
    """(view name, the converters' names) for every named URL pattern."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            # The admin is its own; so is the JSON API (django-ninja answers HEAD with 405 on
            # its operations, which document their methods in the OpenAPI schema).
            if entry.namespace in ("admin", "api"):
                continue
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _named_patterns(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", tuple(entry.pattern.converters)


@pytest.fixture
def samples(vendor_member, shopper):
    vendor = vendor_member.vendor_memberships.get().vendor
    product = factories.ProductFactory(vendor=vendor)
    order = factories.OrderFactory(customer=shopper, status=OrderStatus.PAID)
    line = factories.OrderLineFactory(order=order, product=product)
    address = factories.AddressFactory(user=shopper)
    return {
        "shop:product": {"slug": product.slug},
        "shop:category": {"slug": product.category.slug},
        "shop:cart_update": {"product_id": product.pk},
        "shop:cart_remove": {"product_id": product.pk},
        "shop:order_detail": {"pk": order.pk},
        "shop:order_pay": {"pk": order.pk},
        "accounts:address_edit": {"pk": address.pk},
        "accounts:address_delete": {"pk": address.pk},
        "accounts:address_default": {"pk": address.pk},
        "backoffice:product_edit": {"pk": product.pk},
        "backoffice:product_inline_edit": {"pk": product.pk},
        "backoffice:stock_detail": {"pk": product.pk},
        "backoffice:order_detail": {"order_pk": order.pk},
        "backoffice:order_ship": {"order_pk": order.pk},
        "backoffice:order_line_cancel": {"order_pk": order.pk, "line_pk": line.pk},
        # No such row or a bad token: HEAD must fail the way GET does.
        "default": {"pk": 999999, "token": "not-a-token", "uidb64": "MQ", "path": "none.png"},
    }


def _url(name, converters, samples):
    kwargs = samples.get(name) or {key: samples["default"][key] for key in converters}
    return reverse(name, kwargs=kwargs)


def _assert_head_matches_get(client, urls):
    mismatches = []
    for url in urls:
        head = client.head(url)
        get = client.get(url)
        if head.status_code != get.status_code or _body(head):
            mismatches.append((url, head.status_code, get.status_code, len(_body(head))))
    assert mismatches == []


def _body(response) -> bytes:
    if response.streaming:  # a CSV export, a report download
        return b"".join(response.streaming_content)
    return response.content


def test_the_url_walk_finds_the_shop_the_accounts_and_the_backoffice(samples):
    names = {name for name, _ in _named_patterns()}

    assert {"shop:home", "shop:product", "accounts:login", "backoffice:dashboard"} <= names
    assert not any(name.startswith("admin:") for name in names)


def test_head_answers_like_get_for_a_visitor(client, samples):
    urls = [_url(name, conv, samples) for name, conv in _named_patterns()]

    _assert_head_matches_get(client, urls)


def test_head_answers_like_get_for_a_signed_in_shopper(client, shopper, samples):
    client.force_login(shopper)
    urls = [_url(name, conv, samples) for name, conv in _named_patterns()]

    _assert_head_matches_get(client, urls)


def test_head_answers_like_get_in_the_backoffice(client, vendor_member, samples):
    sign_in_with_second_factor(client, vendor_member)
    urls = [
        _url(name, conv, samples)
        for name, conv in _named_patterns()
        if name.startswith(("backoffice:", "accounts:two", "accounts:profile"))
    ]

    _assert_head_matches_get(client, urls)


def test_a_page_answers_head_with_its_status_and_headers_but_no_body(client, samples):
    response = client.head(reverse("shop:home"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert response.content == b""


def _through_the_wsgi_handler(method: str, path: str) -> tuple[str, dict[str, str], bytes]:
    """Status, headers and body bytes as a WSGI server (gunicorn) receives them: Django's own
    handler with every middleware, without the test client's removal of HEAD bodies."""
    environ = RequestFactory()._base_environ(REQUEST_METHOD=method, PATH_INFO=path)
    started: dict = {}

    def start_response(status, headers, exc_info=None):
        started.update(status=status, headers=dict(headers))

    response = WSGIHandler()(environ, start_response)
    try:
        body = b"".join(response)
    finally:
        response.close()
    return started["status"], started["headers"], body


@pytest.mark.django_db(transaction=True)  # the handler closes connections, as a server's does
@pytest.mark.parametrize("name", ["shop:home", "healthz"])
def test_a_head_answer_reaches_the_server_with_gets_headers_and_no_body(name):
    """gunicorn drops a HEAD body itself, with a warning per response: none must come."""
    get_status, get_headers, get_body = _through_the_wsgi_handler("GET", reverse(name))
    status, headers, body = _through_the_wsgi_handler("HEAD", reverse(name))

    assert status == get_status == "200 OK"
    assert get_body
    assert body == b""
    assert headers["Content-Length"] == get_headers["Content-Length"] == str(len(get_body))
    assert headers["Content-Type"] == get_headers["Content-Type"]
