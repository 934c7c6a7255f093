"""A shopper's personal data export: requested on the profile page, built in the background,
emailed as a link that works only for that shopper and only until it expires."""

import datetime
import io
import json
import re
import zipfile
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataExport
from project.background.models import TaskRecord
from shop.models import Payment
from tests import factories
from tests.fixtures import mail as spool
from tests.fixtures.workers import q_workers  # noqa: F401 - the fixture

IMMEDIATE = {
    "default": {
        "BACKEND": "django.tasks.backends.immediate.ImmediateBackend",
        "QUEUES": ["default", "critical", "emails", "analytics"],
    }
}
Q2 = {"default": {**IMMEDIATE["default"], "BACKEND": "project.background.backend.DjangoQ2Backend"}}


@pytest.fixture
def immediate_tasks(settings, tmp_path):
    settings.TASKS = IMMEDIATE
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def shopper_with_history(shopper):
    address = factories.AddressFactory(user=shopper, line1="1 Export Lane")
    shopper.default_address = address
    shopper.save()
    line = factories.OrderLineFactory(
        order__customer=shopper, product__name="Walnut bowl", unit_price=Decimal("35.00")
    )
    Payment.objects.create(
        order=line.order,
        amount=Decimal("35.00"),
        status="captured",
        idempotency_key="payment-export-test",
        payment_method="pm_sim_ok_secret-token",
        card_brand="Visa",
        card_last4="4242",
    )
    cart = factories.CartFactory(user=shopper)
    factories.CartItemFactory(cart=cart, product__name="Linen napkin", quantity=2)
    return shopper


def download_link(message_body: str) -> str:
    return urlsplit(
        re.search(r"https?://\S+/accounts/data-export/\d+/", message_body).group(0)
    ).path


def read_zip(content: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {
            name: json.loads(archive.read(name)) if name.endswith(".json") else archive.read(name)
            for name in archive.namelist()
        }


@pytest.mark.django_db
def test_the_profile_page_offers_a_data_export(client, shopper):
    client.force_login(shopper)

    page = client.get(reverse("accounts:profile")).content.decode()

    assert "Request a data export" in page
    assert f'action="{reverse("accounts:data_export_request")}"' in page


@pytest.mark.django_db
def test_requesting_an_export_emails_a_link_to_a_zip_of_everything(
    client, shopper_with_history, immediate_tasks
):
    client.force_login(shopper_with_history)

    response = client.post(reverse("accounts:data_export_request"), follow=True)

    assert "We will email you a download link" in response.content.decode()
    export = DataExport.objects.get(user=shopper_with_history)
    assert export.status == DataExport.Status.READY
    assert export.expires_at - export.finished_at == datetime.timedelta(days=7)
    [message] = mail.outbox
    assert message.to == ["shopper@example.com"]
    assert message.subject == "Your Bazaar data export is ready"
    link = download_link(message.body)
    assert link == reverse("accounts:data_export_download", args=[export.pk])

    download = client.get(link)

    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="bazaar-data-export.zip"'
    files = read_zip(b"".join(download.streaming_content))
    assert sorted(files) == [
        "README.txt",
        "addresses.json",
        "cart.json",
        "orders.json",
        "profile.json",
    ]
    assert files["profile.json"]["email"] == "shopper@example.com"
    assert files["profile.json"]["full_name"] == "Sam Shopper"
    assert [a["line1"] for a in files["addresses.json"]] == ["1 Export Lane"]
    [order] = files["orders.json"]
    assert [line["product"] for line in order["lines"]] == ["Walnut bowl"]
    assert order["payments"] == [
        {
            "amount": "35.00",
            "currency": "EUR",
            "status": "captured",
            "card_brand": "Visa",
            "card_last4": "4242",
            "created_at": order["payments"][0]["created_at"],
        }
    ]
    assert [(item["product"], item["quantity"]) for item in files["cart.json"]["items"]] == [
        ("Linen napkin", 2)
    ]
    assert b"secret-token" not in b"".join(
        json.dumps(files[name]).encode() for name in files if name.endswith(".json")
    )


@pytest.mark.django_db
def test_the_link_works_only_for_its_owner(client, shopper_with_history, immediate_tasks):
    client.force_login(shopper_with_history)
    client.post(reverse("accounts:data_export_request"))
    link = download_link(mail.outbox[0].body)
    other = factories.UserFactory()

    client.force_login(other)
    assert client.get(link).status_code == 404
    client.logout()
    anonymous = client.get(link)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("accounts:login"))


@pytest.mark.django_db
def test_an_expired_link_no_longer_downloads(client, shopper_with_history, immediate_tasks):
    client.force_login(shopper_with_history)
    client.post(reverse("accounts:data_export_request"))
    link = download_link(mail.outbox[0].body)
    DataExport.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))

    assert client.get(link).status_code == 404


@pytest.mark.django_db
def test_requesting_twice_while_one_is_pending_queues_one_export(client, shopper, settings):
    settings.TASKS = Q2
    client.force_login(shopper)

    client.post(reverse("accounts:data_export_request"))
    client.post(reverse("accounts:data_export_request"))

    assert DataExport.objects.filter(user=shopper).count() == 1
    [record] = TaskRecord.objects.all()
    assert (record.task_path, record.queue) == ("accounts.tasks.build_data_export", "analytics")


@pytest.mark.django_db
def test_the_export_must_be_requested_with_post(client, shopper):
    client.force_login(shopper)

    assert client.get(reverse("accounts:data_export_request")).status_code == 405
    assert DataExport.objects.count() == 0


def test_an_analytics_worker_builds_the_export_and_emails_it_once(
    q_workers,  # noqa: F811
    client,
    shopper_with_history,
):
    q_workers.start("analytics")
    client.force_login(shopper_with_history)

    client.post(reverse("accounts:data_export_request"))

    export = q_workers.wait_for(
        lambda: DataExport.objects.filter(status=DataExport.Status.READY).first(), timeout=30
    )
    [message] = q_workers.wait_for(q_workers.emails, timeout=20)
    assert message["To"] == "shopper@example.com"
    assert message["Subject"] == "Your Bazaar data export is ready"
    link = download_link(spool.text_body(message))
    assert link == reverse("accounts:data_export_download", args=[export.pk])
    download = client.get(link)
    assert download.status_code == 200
    assert read_zip(b"".join(download.streaming_content))["profile.json"]["email"] == (
        "shopper@example.com"
    )
