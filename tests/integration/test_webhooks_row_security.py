"""The webhook tables are vendor-owned like the shop's (docs/database-security.md): inside
one vendor's scope even a raw query with no vendor filter sees and changes nothing of another
vendor's endpoints or deliveries, and cannot hand a row to another vendor."""

import uuid

import pytest
from django.db import DatabaseError, connection, transaction

from project.db import scope
from tests import factories
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db

TABLES = ["webhooks_endpoint", "webhooks_delivery"]


def shop_with_a_delivery():
    vendor = factories.VendorFactory()
    endpoint = Endpoint.objects.create(
        vendor=vendor, url="https://erp.example/hook", events=["order.paid"], secret="whsec_x"
    )
    Delivery.objects.create(
        vendor=vendor,
        endpoint=endpoint,
        event_id=uuid.uuid4(),
        event_type="order.paid",
        payload={},
    )
    return vendor


def test_row_level_security_is_enabled_and_forced_on_the_webhook_tables():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE relname = ANY(%s)",
            [TABLES],
        )
        flags = {name: (enabled, forced) for name, enabled, forced in cursor.fetchall()}

    assert flags == dict.fromkeys(TABLES, (True, True))


def test_a_vendor_scope_sees_and_changes_only_its_own_webhook_rows():
    mine, other = shop_with_a_delivery(), shop_with_a_delivery()
    seen, changed = {}, {}

    with transaction.atomic(), scope.vendor_scope(mine.pk), connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"SELECT DISTINCT vendor_id FROM {table}")  # noqa: S608
            seen[table] = [row[0] for row in cursor.fetchall()]
            cursor.execute(f"UPDATE {table} SET vendor_id = vendor_id")  # noqa: S608
            changed[table] = cursor.rowcount
            cursor.execute(f"DELETE FROM {table} WHERE vendor_id = %s", [other.pk])  # noqa: S608
            assert cursor.rowcount == 0
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            cursor.execute(
                "UPDATE webhooks_endpoint SET vendor_id = %s WHERE vendor_id = %s",
                [other.pk, mine.pk],
            )

    assert seen == dict.fromkeys(TABLES, [mine.pk])
    assert changed == dict.fromkeys(TABLES, 1)
    assert Endpoint.objects.filter(vendor=other).count() == 1
    assert Delivery.objects.filter(vendor=other).count() == 1
