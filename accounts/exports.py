"""Personal data export: a zip of JSON files with everything the shop holds about one user."""

import datetime
import io
import json
import zipfile
from collections.abc import Mapping

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone

from accounts import tasks
from accounts.models import DataExport, User
from project import emails, files
from project.audit import services as audit
from shop.models import Cart, Order, OrderLine

PENDING = (DataExport.Status.QUEUED, DataExport.Status.RUNNING)


def request_data_export(*, user: User, base_url: str | None = None) -> DataExport:
    """Queue an export for the user (on `analytics`); a second request while one is pending
    returns the pending one. The user row is locked so a double click queues one export."""
    with transaction.atomic():
        User.objects.select_for_update().only("pk").get(pk=user.pk)
        pending = DataExport.objects.filter(user=user, status__in=PENDING).first()
        if pending is not None:
            return pending
        export = DataExport.objects.create(user=user)
        audit.record("export.personal_data_requested", actor=user, target=export)
        tasks.build_data_export.enqueue(export_id=export.pk, base_url=base_url)
    return export


def get_downloadable_export(*, user: User, export_id: int) -> DataExport | None:
    """The user's own, finished, unexpired export, or None."""
    return (
        DataExport.objects.filter(
            pk=export_id,
            user=user,
            status=DataExport.Status.READY,
            expires_at__gt=timezone.now(),
        )
        .exclude(file="")
        .first()
    )


def record_download(*, export: DataExport, user: User) -> None:
    """Audit that `user` downloaded their export (its view checked the access)."""
    audit.record("export.personal_data_downloaded", actor=user, target=export)


def purge_expired_exports(*, now: datetime.datetime | None = None, dry_run: bool = False) -> int:
    """Delete the files of exports past their expiry and mark them expired; returns how many.

    Each row is claimed under its lock before the file goes, so two purges never collide."""
    now = now or timezone.now()
    purged = 0
    expired = DataExport.objects.filter(status=DataExport.Status.READY, expires_at__lte=now)
    if dry_run:
        return expired.count()
    for pk in expired.values_list("pk", flat=True).iterator():
        with transaction.atomic():
            export = (
                DataExport.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, status=DataExport.Status.READY, expires_at__lte=now)
                .first()
            )
            if export is None:
                continue
            name = export.file.name
            DataExport.objects.filter(pk=pk).update(status=DataExport.Status.EXPIRED, file="")
        if name:
            files.private_storage().delete(name)
        purged += 1
    return purged


def build_data_export(*, export_id: int, base_url: str | None = None) -> DataExport | None:
    """Write the zip, mark the export ready with its expiry, and email the link once.

    Idempotent: a ready export is not rebuilt, and the email is keyed by the export.
    """
    with transaction.atomic():
        export = (
            DataExport.objects.select_for_update().select_related("user").filter(pk=export_id)
        ).first()
        if export is None or export.status == DataExport.Status.FAILED:
            return None
        if export.status != DataExport.Status.READY:
            export.status = DataExport.Status.RUNNING
            export.save(update_fields=["status"])
    if export.status != DataExport.Status.READY:
        archive = build_archive(user=export.user)
        # Private storage, random name: only the download view (its owner, unexpired) reads it.
        name = files.unguessable_name(".zip")
        with transaction.atomic():
            export = DataExport.objects.select_for_update().select_related("user").get(pk=export_id)
            if export.status != DataExport.Status.READY:
                export.file.save(name, ContentFile(archive), save=False)
                export.status = DataExport.Status.READY
                export.error = ""
                export.finished_at = timezone.now()
                export.expires_at = export.finished_at + datetime.timedelta(
                    seconds=settings.DATA_EXPORT_TTL
                )
                export.save()
    _email_link(export=export, base_url=base_url)
    return export


def mark_failed(*, export_id: int, error: str) -> None:
    DataExport.objects.filter(pk=export_id).exclude(status=DataExport.Status.READY).update(
        status=DataExport.Status.FAILED, error=error[:300], finished_at=timezone.now()
    )


def _email_link(*, export: DataExport, base_url: str | None) -> None:
    path = reverse("accounts:data_export_download", kwargs={"pk": export.pk})
    emails.send_templated_email(
        to=export.user.email,
        template="data_export_ready",
        subject="Your Bazaar data export is ready",
        context={
            "name": export.user.full_name,
            "download_url": emails.absolute_url(path, base_url=base_url),
            "expires_at": export.expires_at,
        },
        idempotency_key=f"data-export:{export.pk}",
    )


def build_archive(*, user: User) -> bytes:
    """The zip's bytes: profile, addresses, orders (lines, payments by brand/last4, refunds),
    cart. Card tokens and anything else that is not the person's own data stay out."""
    buffer = io.BytesIO()
    files = {
        "profile.json": _profile(user),
        "addresses.json": _addresses(user),
        "orders.json": _orders(user),
        "cart.json": _cart(user),
    }
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, json.dumps(data, cls=DjangoJSONEncoder, indent=2))
        archive.writestr(
            "README.txt",
            "Everything Bazaar holds about you, as JSON. Amounts are decimal strings; "
            "times are UTC (ISO 8601). Payment cards appear only as brand and last four digits.\n",
        )
    return buffer.getvalue()


def _profile(user: User) -> dict:
    return {
        "email": user.email,
        "full_name": user.full_name,
        "phone": user.phone,
        "date_joined": user.date_joined,
        "last_login": user.last_login,
        "email_verified_at": user.email_verified_at,
        "default_address_id": user.default_address_id,
    }


def _addresses(user: User) -> list[Mapping[str, object]]:
    return list(
        user.addresses.order_by("created_at", "id").values(
            "id",
            "full_name",
            "line1",
            "line2",
            "city",
            "postal_code",
            "country",
            "phone",
            "created_at",
        )
    )


def _orders(user: User) -> list[dict]:
    orders = (
        Order.objects.filter(customer=user)
        .order_by("created_at", "id")
        .prefetch_related(
            Prefetch("lines", queryset=OrderLine.objects.select_related("vendor").order_by("id")),
            "payments",
            "refunds",
        )
    )
    return [
        {
            "number": order.number,
            "status": order.status,
            "total": order.total,
            "currency": order.currency,
            "created_at": order.created_at,
            "shipping_address": {
                "name": order.ship_name,
                "line1": order.ship_line1,
                "line2": order.ship_line2,
                "city": order.ship_city,
                "postal_code": order.ship_postal_code,
                "country": order.ship_country,
                "phone": order.ship_phone,
            },
            "lines": [
                {
                    "product": line.product_name,
                    "vendor": line.vendor.name,
                    "unit_price": line.unit_price,
                    "quantity": line.quantity,
                    "line_total": line.line_total,
                    "status": line.status,
                }
                for line in order.lines.all()
            ],
            "payments": [
                {
                    "amount": payment.amount,
                    "currency": payment.currency,
                    "status": payment.status,
                    "card_brand": payment.card_brand,
                    "card_last4": payment.card_last4,
                    "created_at": payment.created_at,
                }
                for payment in order.payments.all()
            ],
            "refunds": [
                {
                    "amount": refund.amount,
                    "currency": refund.currency,
                    "status": refund.status,
                    "reason": refund.reason,
                    "created_at": refund.created_at,
                }
                for refund in order.refunds.all()
            ],
        }
        for order in orders
    ]


def _cart(user: User) -> dict:
    cart = Cart.objects.filter(user=user).prefetch_related("items__product").first()
    if cart is None:
        return {"items": []}
    return {
        "updated_at": cart.updated_at,
        "items": [
            {
                "product": item.product.name,
                "unit_price": item.product.price,
                "quantity": item.quantity,
                "added_at": item.added_at,
            }
            for item in cart.items.all()
        ],
    }
