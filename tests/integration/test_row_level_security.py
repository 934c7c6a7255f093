"""Row-level security (docs/database-security.md): inside a vendor's backoffice request even a
query that forgets its vendor filter sees and changes nothing of another shop; shoppers, the
admin's system scope and the workers still see what they need. The tests run as the app role,
which the policies bind (a superuser would bypass them and prove nothing)."""

import json
import uuid
from decimal import Decimal

import pytest
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, include, path, reverse

from api.models import ApiKey
from backoffice import urls as backoffice_urls
from backoffice.decorators import vendor_member_required
from project.db import roles, scope
from shop.models import (
    OrderLine,
    Product,
    Refund,
    ReportJob,
    Shipment,
    StockAdjustment,
    Vendor,
    VendorInvitation,
    VendorMembership,
    VendorStatus,
)
from tests import factories
from tests.fixtures import asgi_server, database, twofactor, workers
from tests.fixtures import tasks as fixture_tasks
from tests.fixtures.twofactor import sign_in_with_second_factor
from tests.fixtures.workers import q_workers  # noqa: F401 - the fixture
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db

# table -> its vendor column, for the deliberately unscoped raw queries below
VENDOR_TABLES = {
    "shop_orderline": "vendor_id",
    "shop_product": "vendor_id",
    "shop_stockadjustment": "vendor_id",
    "shop_shipment": "vendor_id",
    "shop_reportjob": "vendor_id",
    "shop_vendorinvitation": "vendor_id",
    "shop_refund": "vendor_id",
    "shop_vendormembership": "vendor_id",
    "shop_vendor": "id",
}
RLS_TABLES = [*VENDOR_TABLES, "shop_refund_lines"]


@vendor_member_required
def unscoped_probe(request: HttpRequest, *, vendor: Vendor) -> JsonResponse:
    """A backoffice view with the bug RLS is there for: raw SQL with no vendor filter.
    `?other=<id>` names the other vendor whose rows it tries to read, change and delete."""
    other = int(request.GET["other"])
    report: dict[str, dict] = {}
    with connection.cursor() as cursor:
        for table, column in VENDOR_TABLES.items():
            cursor.execute(f"SELECT DISTINCT {column} FROM {table}")  # noqa: S608
            seen = sorted(row[0] for row in cursor.fetchall())
            cursor.execute(f"UPDATE {table} SET {column} = {column} WHERE {column} = %s", [other])  # noqa: S608
            updated_other = cursor.rowcount
            cursor.execute(f"UPDATE {table} SET {column} = {column}")  # noqa: S608
            updated_all = cursor.rowcount
            with transaction.atomic():  # a refused delete (foreign keys) must not end the probe
                cursor.execute(f"DELETE FROM {table} WHERE {column} = %s", [other])  # noqa: S608
                deleted_other = cursor.rowcount
                transaction.set_rollback(True)
            report[table] = {
                "seen": seen,
                "updated_other": updated_other,
                "updated_all": updated_all,
                "deleted_other": deleted_other,
            }
        try:
            with transaction.atomic():
                cursor.execute(
                    "UPDATE shop_product SET vendor_id = %s WHERE vendor_id = %s",
                    [other, vendor.pk],
                )
        except DatabaseError as error:
            report["move_to_other"] = {"refused": str(error).splitlines()[0]}
    return JsonResponse(report)


@vendor_member_required
def scope_probe(request: HttpRequest, *, vendor: Vendor) -> JsonResponse:
    return JsonResponse({"scope": scope.current()})


def public_scope_probe(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
        if request.GET.get("leak"):
            # The mistake the backend guards against: a vendor scope set for the session.
            cursor.execute("SELECT set_config('app.vendor_id', %s, false)", [request.GET["leak"]])
    return JsonResponse({"scope": scope.current(), "pid": pid})


urlpatterns = [
    path("backoffice/probe/unscoped/", unscoped_probe),
    path("backoffice/probe/scope/", scope_probe),
    path("probe/scope/", public_scope_probe),
    path("", include("project.urls")),
]


@pytest.fixture
def shops():
    """Two approved shops, each with a row in every vendor-owned table, sharing one order."""
    mine, other = factories.VendorFactory(), factories.VendorFactory()
    category = factories.CategoryFactory()
    order = factories.OrderFactory(status="paid", total=Decimal("30.00"))
    payment = factories.CapturedPaymentFactory(order=order, amount=Decimal("30.00"))
    rows = {}
    for vendor in (mine, other):
        product = factories.ProductFactory(vendor=vendor, category=category, name=f"{vendor} mug")
        factories.ProductFactory(vendor=vendor, category=category, is_active=False)
        shipment = factories.ShipmentFactory(order=order, vendor=vendor)
        line = factories.OrderLineFactory(order=order, product=product, shipment=shipment)
        refund = Refund.objects.create(
            order=order,
            payment=payment,
            vendor=vendor,
            amount=Decimal("1.00"),
            idempotency_key=f"rls-{vendor.pk}",
        )
        refund.lines.set([line])
        rows[vendor.pk] = {
            "product": product,
            "line": line,
            "shipment": shipment,
            "refund": refund,
            "adjustment": StockAdjustment.objects.create(
                vendor=vendor, product=product, change=5, stock_after=15, reason="received"
            ),
            "invitation": factories.VendorInvitationFactory(vendor=vendor),
            "report": ReportJob.objects.create(
                kind="vendor_sales_by_day",
                vendor=vendor,
                date_from="2026-01-01",
                date_to="2026-01-31",
            ),
            "api_key": ApiKey.objects.create(
                vendor=vendor,
                name="Sync",
                prefix=f"bzk_rls{vendor.pk}",
                key_hash=f"{vendor.pk:064d}",
                scope="read",
            ),
        }
        endpoint = Endpoint.objects.create(
            vendor=vendor, url="http://127.0.0.1:9/hook", events=["order.paid"], secret="whsec_x"
        )
        rows[vendor.pk]["webhook_endpoint"] = endpoint
        rows[vendor.pk]["webhook_delivery"] = Delivery.objects.create(
            vendor=vendor,
            endpoint=endpoint,
            event_id=uuid.uuid4(),
            event_type="order.paid",
            payload={},
        )
    member = factories.VendorMembershipFactory(
        vendor=mine, role=VendorMembership.Role.STAFF, user__email="staff@mine.example"
    ).user
    factories.VendorMembershipFactory(vendor=other, role=VendorMembership.Role.STAFF)
    return mine, other, member, rows


def test_the_tests_run_as_the_app_role_which_row_level_security_binds():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        user, superuser, bypass = cursor.fetchone()
        cursor.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
        owners = {row[0] for row in cursor.fetchall()}

    assert user == database.APP.name
    assert (superuser, bypass) == (False, False)
    assert owners == {database.OWNER.name}


def test_row_level_security_is_enabled_and_forced_on_every_vendor_owned_table():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE relname = ANY(%s)",
            [RLS_TABLES],
        )
        flags = {name: (enabled, forced) for name, enabled, forced in cursor.fetchall()}

    assert flags == dict.fromkeys(RLS_TABLES, (True, True))


def test_the_app_role_may_only_append_to_append_only_tables():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, string_agg(privilege_type, ',' ORDER BY privilege_type) "
            "FROM information_schema.role_table_grants "
            "WHERE grantee = current_user AND table_name = ANY(%s) GROUP BY table_name",
            [roles.APPEND_ONLY_TABLES],
        )
        granted = dict(cursor.fetchall())

    # TRUNCATE only for the test suite's flush between transactional tests
    assert granted == dict.fromkeys(roles.APPEND_ONLY_TABLES, "INSERT,SELECT,TRUNCATE")


@pytest.mark.urls(__name__)
def test_an_unscoped_query_in_a_vendor_request_sees_and_changes_nothing_of_another_shop(
    client, shops
):
    mine, other, member, rows = shops
    sign_in_with_second_factor(client, member)

    response = client.get("/backoffice/probe/unscoped/", {"other": other.pk})

    assert response.status_code == 200
    report = json.loads(response.content)
    for table in VENDOR_TABLES:
        assert report[table]["seen"] == [mine.pk], table
        assert report[table]["updated_other"] == 0, table
        assert report[table]["deleted_other"] == 0, table
    # an UPDATE with no WHERE at all reaches this shop's rows only
    assert report["shop_product"]["updated_all"] == 2  # its active and its inactive product
    assert report["shop_orderline"]["updated_all"] == 1
    assert report["shop_vendor"]["updated_all"] == 1
    # and a row cannot be handed to the other shop (WITH CHECK)
    assert "violates row-level security policy" in report["move_to_other"]["refused"]
    # the other shop's rows are all there, unchanged (read here in the system scope)
    theirs = rows[other.pk]
    assert Product.objects.filter(vendor=other).count() == 2
    assert OrderLine.objects.get(pk=theirs["line"].pk).vendor_id == other.pk
    assert Shipment.objects.filter(pk=theirs["shipment"].pk, vendor=other).exists()
    assert StockAdjustment.objects.filter(pk=theirs["adjustment"].pk, vendor=other).exists()
    assert ReportJob.objects.filter(pk=theirs["report"].pk, vendor=other).exists()
    assert VendorInvitation.objects.filter(pk=theirs["invitation"].pk, vendor=other).exists()
    assert Refund.objects.get(pk=theirs["refund"].pk).lines.get() == theirs["line"]
    assert Product.objects.filter(vendor=mine).count() == 2


@pytest.mark.urls(__name__)
def test_a_vendor_request_runs_in_its_vendor_scope_and_the_next_query_is_system_again(
    client, shops
):
    mine, _, member, _ = shops
    sign_in_with_second_factor(client, member)

    assert client.get("/backoffice/probe/scope/").json() == {"scope": str(mine.pk)}
    assert scope.current() == scope.SYSTEM


def test_without_a_scope_only_the_public_catalogue_is_visible_and_nothing_changes(shops):
    mine, other, _, rows = shops
    suspended = factories.VendorFactory(status=VendorStatus.SUSPENDED)
    factories.ProductFactory(vendor=suspended)

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.vendor_id', '', true)")
        cursor.execute("SELECT name FROM shop_product ORDER BY vendor_id")
        products = [row[0] for row in cursor.fetchall()]
        counts = {}
        for table in ("shop_orderline", "shop_shipment", "shop_stockadjustment", "shop_refund"):
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
            counts[table] = cursor.fetchone()[0]
        cursor.execute("UPDATE shop_product SET price = 0")
        updated = cursor.rowcount
        transaction.set_rollback(True)

    assert products == [rows[mine.pk]["product"].name, rows[other.pk]["product"].name]
    assert counts == dict.fromkeys(counts, 0)
    assert updated == 0


def test_shoppers_still_see_every_shops_active_products(client, shops):
    mine, other, _, rows = shops

    for vendor in (mine, other):
        product = rows[vendor.pk]["product"]
        page = client.get(product.get_absolute_url())
        assert page.status_code == 200
        assert product.name in page.text
    listing = client.get(reverse("shop:home"))
    assert rows[other.pk]["product"].name in listing.text


def test_the_admin_sees_every_shops_rows(client, shops, staff):
    mine, other, _, rows = shops
    twofactor.sign_in_with_second_factor(client, staff)  # the admin wants both factors

    page = client.get(reverse("admin:shop_product_changelist"))

    assert page.status_code == 200
    assert rows[mine.pk]["product"].name in page.text
    assert rows[other.pk]["product"].name in page.text


def test_a_real_worker_runs_as_the_app_role_in_the_system_scope_and_sees_every_shop(
    q_workers,  # noqa: F811 - the fixture
    shops,
):
    q_workers.start("critical")

    result = fixture_tasks.database_identity.enqueue()

    q_workers.wait_for(lambda: result.refresh() or result.is_finished, timeout=30)
    assert result.return_value == {"user": database.APP.name, "scope": "system", "vendors": 2}


def test_the_processes_tests_start_connect_as_the_app_role():
    app_url = f"postgres://{database.APP.name}:{database.APP.password}@"
    assert workers.database_url().startswith(app_url)
    assert asgi_server.database_url().startswith(app_url)


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls(__name__)
def test_a_vendor_scope_never_reaches_the_next_request_on_a_pooled_connection(client, shops):
    mine, _, member, _ = shops
    sign_in_with_second_factor(client, member)
    assert connection.pool is not None  # the tests use psycopg's pool, as production does

    def get(url: str, **query: str) -> dict:
        answer = client.get(url, query).json()
        # What the server does after every request (Django's test client leaves it out): the
        # connection goes back to the pool.
        close_old_connections()
        return answer

    assert get("/backoffice/probe/scope/") == {"scope": str(mine.pk)}
    # even a scope set for the whole session by mistake ends with its request: the backend
    # puts every connection it hands out back in the system scope
    leaked = get("/probe/scope/", leak=str(mine.pk))
    seen_pids = set()
    for _ in range(connection.pool.max_size + 1):
        answer = get("/probe/scope/")
        assert answer["scope"] == scope.SYSTEM
        seen_pids.add(answer["pid"])
    assert leaked["pid"] in seen_pids  # the very connection that had the leaked setting


def _backoffice_urls(rows: dict, member_pk: int) -> list[tuple[str, str, str]]:
    """(name, method, url) of every backoffice view a member opens, with this shop's ids."""
    kwargs = {
        "product_edit": {"pk": rows["product"].pk},
        "product_inline_edit": {"pk": rows["product"].pk},
        "stock_detail": {"pk": rows["product"].pk},
        "order_detail": {"order_pk": rows["line"].order_id},
        "order_ship": {"order_pk": rows["line"].order_id},
        "order_line_cancel": {"order_pk": rows["line"].order_id, "line_pk": rows["line"].pk},
        "report_detail": {"pk": rows["report"].pk},
        "report_download": {"pk": rows["report"].pk},
        "member_remove": {"pk": member_pk},
        "invitation_revoke": {"pk": rows["invitation"].pk},
        "webhook_rotate": {"pk": rows["webhook_endpoint"].pk},
        "webhook_toggle": {"pk": rows["webhook_endpoint"].pk},
        "webhook_delete": {"pk": rows["webhook_endpoint"].pk},
        "webhook_test": {"pk": rows["webhook_endpoint"].pk},
        "webhook_retry": {"pk": rows["webhook_delivery"].pk},
        "api_key_revoke": {"pk": rows["api_key"].pk},
    }
    found = []
    for pattern in backoffice_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        if pattern.name in {"apply", "invitation_accept"}:  # not yet a member: no shop to scope
            continue
        url = reverse(f"backoffice:{pattern.name}", kwargs=kwargs.get(pattern.name))
        # GET unless the view answers GET with 405 (POST-only), then POST with nothing
        found.append((pattern.name, url))
    return found


def test_every_backoffice_view_queries_vendor_tables_only_in_its_vendor_scope(client, shops):
    mine, _, member, rows = shops
    sign_in_with_second_factor(client, member)
    membership = VendorMembership.objects.get(user=member)
    vendor_tables = [table for table in RLS_TABLES if table != "shop_vendormembership"]
    checked = []

    for name, url in _backoffice_urls(rows[mine.pk], membership.pk):
        recorded: list[tuple[str | None, str]] = []

        def record(execute, sql, params, many, context, recorded=recorded):
            with context["connection"].connection.cursor() as probe:
                probe.execute("SELECT NULLIF(current_setting('app.vendor_id', true), '')")
                recorded.append((probe.fetchone()[0], sql))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            response = client.get(url)
            if response.status_code == 405:
                response = client.post(url, {})
            if response.streaming:
                b"".join(response.streaming_content)

        assert response.status_code < 500, name
        touching = [
            (value, sql)
            for value, sql in recorded
            if any(f'"{table}"' in sql for table in vendor_tables)
        ]
        scoped = [index for index, (value, _) in enumerate(recorded) if value == str(mine.pk)]
        assert scoped, f"{name}: no query ran in the vendor scope"
        outside = [sql for value, sql in touching if value != str(mine.pk)]
        # Outside the scope only the decorator's lookup of the member's shop (shop_vendor
        # joined to the membership), before the view; the view's own queries and the
        # streamed export's are all inside.
        assert all("shop_vendormembership" in sql for sql in outside), (name, outside)
        checked.append(name)

    assert len(checked) == len(backoffice_urls.urlpatterns) - 2


# --- Decisions that are the whole order's, made inside one vendor's request ---------------------


@pytest.fixture
def shared_order():
    """A paid order of 30.00: 10.00 from my shop, 20.00 from another; a member of mine."""
    mine, other = factories.VendorFactory(), factories.VendorFactory()
    order = factories.OrderFactory(status="paid", total=Decimal("30.00"))
    payment = factories.CapturedPaymentFactory(order=order, amount=Decimal("30.00"))
    lines = {
        vendor.pk: factories.OrderLineFactory(
            order=order, product=factories.ProductFactory(vendor=vendor, price=price)
        )
        for vendor, price in ((mine, Decimal("10.00")), (other, Decimal("20.00")))
    }
    member = factories.VendorMembershipFactory(vendor=mine, role=VendorMembership.Role.STAFF).user
    return {
        "order": order,
        "payment": payment,
        "mine": mine,
        "other": other,
        "lines": lines,
        "member": member,
    }


def test_shipping_my_part_leaves_the_order_paid_while_another_shop_has_not_shipped(
    client, shared_order
):
    client.force_login(shared_order["member"])
    order = shared_order["order"]

    response = client.post(
        reverse("backoffice:order_ship", args=[order.pk]),
        {"carrier": "DHL", "tracking_number": "JJD1"},
    )

    assert response.status_code == 302
    assert OrderLine.objects.get(pk=shared_order["lines"][shared_order["mine"].pk].pk).status == (
        "shipped"
    )
    # the other shop's line, hidden from this request, still counts: not shipped as a whole
    order.refresh_from_db()
    assert order.status == "paid"


def test_a_refund_never_exceeds_what_other_shops_refunds_left(client, shared_order):
    # given another shop's refund has taken 25.00 of the 30.00 captured
    Refund.objects.create(
        order=shared_order["order"],
        payment=shared_order["payment"],
        vendor=shared_order["other"],
        amount=Decimal("25.00"),
        idempotency_key="other-shop-refund",
    )
    client.force_login(shared_order["member"])
    line = shared_order["lines"][shared_order["mine"].pk]

    # when my shop cancels its 10.00 line, which would need a 10.00 refund
    response = client.post(
        reverse("backoffice:order_line_cancel", args=[shared_order["order"].pk, line.pk]),
        {"reason": "Broke in the warehouse"},
    )

    # then it is refused with the reason, and nothing changed
    assert response.status_code == 422
    assert "Nothing is left to refund on this order." in response.text
    assert OrderLine.objects.get(pk=line.pk).status == "pending"
    assert not Refund.objects.filter(vendor=shared_order["mine"]).exists()


def test_a_new_product_named_like_another_shops_gets_a_free_slug(client, shared_order):
    category = factories.CategoryFactory()
    factories.ProductFactory(vendor=shared_order["other"], name="Blue Mug", slug="blue-mug")
    client.force_login(shared_order["member"])

    response = client.post(
        reverse("backoffice:product_create"),
        {
            "name": "Blue Mug",
            "category": str(category.pk),
            "price": "12.50",
            "stock": "4",
            "description": "",
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    assert Product.objects.get(vendor=shared_order["mine"], name="Blue Mug").slug == "blue-mug-2"


# --- project.db.scope ----------------------------------------------------------------------------


def _fail_in_the_system_scope() -> None:
    with scope.system_scope():
        assert scope.current() == scope.SYSTEM
        raise ValueError("domain error")


def test_a_system_scope_left_by_an_error_gives_the_vendor_scope_back():
    with transaction.atomic(), scope.vendor_scope(7):
        with pytest.raises(ValueError, match="domain error"):
            _fail_in_the_system_scope()
        assert scope.current() == "7"
    assert scope.current() == scope.SYSTEM


@pytest.mark.django_db(transaction=True)  # no test transaction around it
def test_a_vendor_scope_needs_a_transaction():
    with (
        pytest.raises(RuntimeError, match=r"inside transaction.atomic\(\) only"),
        scope.vendor_scope(7),
    ):
        pass  # never reached: entering the scope raises
    assert scope.current() == scope.SYSTEM
