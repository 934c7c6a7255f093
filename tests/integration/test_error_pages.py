"""403, 404 and 500 pages in the shop's layout, with a way back, as shown with DEBUG off;
and a pending vendor's backoffice says the application is under review."""

import contextlib
import logging

import pytest
from django.db import DatabaseError, OperationalError, connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import Http404
from django.urls import include, path

from project import urls as project_urls
from shop.models import VendorStatus
from tests import factories

pytestmark = pytest.mark.django_db


def _boom(request):
    raise DatabaseError("the database is unreachable")


def _missing_after_the_connection_died(request):
    """As after a database restart: the connection dies once the view's own queries are done,
    and the view answers "not found"; the error page's layout then meets the dead connection."""
    # The server cuts this very connection, so the statement itself fails.
    with connection.cursor() as cursor, contextlib.suppress(DatabaseError):
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    raise Http404("No such order.")


class _DatabaseDown:
    """From the moment a view calls `_database_down.go()`, every new query fails as it
    would with PostgreSQL unreachable (Django's own cursor, the project's code untouched)."""

    active: "_DatabaseDown | None" = None

    def __init__(self, monkeypatch):
        self.down = False
        original = BaseDatabaseWrapper.cursor

        def cursor(wrapper):
            if self.down:
                raise OperationalError("connection to server failed: Connection refused")
            return original(wrapper)

        monkeypatch.setattr(BaseDatabaseWrapper, "cursor", cursor)
        _DatabaseDown.active = self

    def restore(self):
        self.down = False
        _DatabaseDown.active = None


def _missing_while_the_database_goes_down(request):
    _DatabaseDown.active.down = True
    raise Http404("No such order.")


# This module doubles as a URLconf: the shop's URLs plus views that fail, with the shop's
# error handlers.
urlpatterns = [
    path("boom/", _boom),
    path("gone/", _missing_after_the_connection_died),
    path("gone-while-the-database-is-down/", _missing_while_the_database_goes_down),
    path("", include("project.urls")),
]
handler403 = project_urls.handler403
handler404 = project_urls.handler404


@pytest.fixture(autouse=True)
def _debug_off(settings):
    settings.DEBUG = False


def test_an_unknown_page_is_a_404_in_the_shops_layout_with_search_and_a_way_home(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    content = response.content.decode()
    assert "<title>Page not found · Bazaar</title>" in content
    assert "We can’t find that page" in content
    assert 'class="site-header"' in content  # the shop's header, cart and footer
    assert 'role="search" action="/products/"' in content
    assert '<a class="button" href="/">Back to the home page</a>' in content
    assert '<a href="/accounts/login/">Log in</a>' in content


def test_a_missing_product_is_a_404_with_the_same_page(client):
    response = client.get("/p/not-for-sale/")

    assert response.status_code == 404
    assert "We can’t find that page" in response.content.decode()


def test_a_shopper_refused_the_backoffice_sees_a_403_with_the_reason_and_a_way_back(
    client, shopper
):
    client.force_login(shopper)

    response = client.get("/backoffice/")

    assert response.status_code == 403
    content = response.content.decode()
    assert "<title>Access denied · Bazaar</title>" in content
    assert "You don’t have access to this page" in content
    assert "Only vendor members can open the backoffice." in content
    assert "You are signed in as shopper@example.com." in content
    assert '<a class="button" href="/">Back to the home page</a>' in content
    assert '<a href="/backoffice/apply/">Sell on Bazaar</a>' in content


def test_a_pending_vendors_backoffice_explains_the_application_is_under_review(client):
    membership = factories.VendorMembershipFactory(
        vendor__name="Fjord & Field", vendor__status=VendorStatus.PENDING
    )
    client.force_login(membership.user)

    response = client.get("/backoffice/")

    assert response.status_code == 403
    content = response.content.decode()
    assert "<h1>Your shop is under review</h1>" in content
    assert "Fjord &amp; Field" in content
    assert "Pending review" in content
    assert "the backoffice is not open yet" in content
    assert '<a href="/">Back to the shop</a>' in content


def test_a_rejected_applicant_gets_the_plain_403(client):
    membership = factories.VendorMembershipFactory(vendor__status=VendorStatus.REJECTED)
    client.force_login(membership.user)

    response = client.get("/backoffice/orders/")

    assert response.status_code == 403
    assert "You don’t have access to this page" in response.content.decode()


def test_a_server_error_page_renders_even_when_the_database_and_context_processors_fail(
    client, settings, monkeypatch
):
    settings.ROOT_URLCONF = __name__
    client.raise_request_exception = False

    def broken(*args, **kwargs):
        raise DatabaseError("no database")

    monkeypatch.setattr("shop.context_processors.cart_summary", broken)
    monkeypatch.setattr("backoffice.context_processors.backoffice_link", broken)
    monkeypatch.setattr("django.db.backends.base.base.BaseDatabaseWrapper.cursor", broken)

    response = client.get("/boom/")

    assert response.status_code == 500
    content = response.content.decode()
    assert "<title>Something went wrong · Bazaar</title>" in content
    assert "Something went wrong on our side" in content
    assert '<a class="button" href="/">Back to the home page</a>' in content
    assert 'action="/products/"' in content
    assert '<a href="/accounts/login/">Log in</a>' in content


@pytest.mark.django_db(transaction=True)
def test_a_404_after_its_database_connection_died_still_shows_the_shops_layout(
    client, settings, shopper
):
    # Found by `make chaos`: after a PostgreSQL restart, a vendor's "not your order" 404
    # came back as a 500 with no traceback anywhere. Django renders the error page on a
    # thread whose connection had died with the restart (and swallows a failing 404 page).
    settings.ROOT_URLCONF = __name__
    client.force_login(shopper)  # signed in: the header asks the database for the cart badge

    response = client.get("/gone/")

    assert response.status_code == 404
    content = response.content.decode()
    assert "<title>Page not found · Bazaar</title>" in content
    assert "We can’t find that page" in content
    assert '<a href="/orders/">My orders</a>' in content  # the full header, for this shopper
    assert 'class="cart-badge' in content


def test_a_404_whose_layout_cannot_reach_the_database_is_a_plain_404_and_logged(
    client, settings, shopper, monkeypatch, caplog
):
    settings.ROOT_URLCONF = __name__
    client.force_login(shopper)
    down = _DatabaseDown(monkeypatch)

    with caplog.at_level(logging.ERROR, logger="project.error_pages"):
        response = client.get("/gone-while-the-database-is-down/")
    down.restore()

    assert response.status_code == 404
    content = response.content.decode()
    assert "<title>Page not found · Bazaar</title>" in content
    assert "We can’t find that page" in content
    assert '<a class="button" href="/">Back to the home page</a>' in content
    assert "My orders" not in content  # the self-contained page: no user, no cart
    [record] = [record for record in caplog.records if record.name == "project.error_pages"]
    assert record.getMessage().startswith("The 404 page could not render in the shop's layout")
    assert record.exc_info[0] is OperationalError
