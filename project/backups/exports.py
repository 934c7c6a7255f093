"""The business data as JSON (Django's serializers): readable without PostgreSQL, loadable
with `manage.py loaddata` (as the owner, which may reset the sequences), and checked against
the dump by the row counts in the manifest.

One gzip-compressed file per model. Users are exported without their password hashes unless
asked: a stolen backup should not hand out crackable hashes.
"""

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.core.serializers import json as json_serializer
from django.db import models

# The business data, parents before children (loaddata order). There is no ledger model: the
# money is in payments and refunds.
BUSINESS_MODELS = [
    "accounts.User",
    "accounts.Address",
    "shop.Category",
    "shop.Vendor",
    "shop.VendorMembership",
    "shop.Product",
    "shop.StockAdjustment",
    "shop.Order",
    "shop.Shipment",
    "shop.OrderLine",
    "shop.Payment",
    "shop.Refund",
]
# Fields never exported unless asked (--include-password-hashes).
PASSWORD_FIELDS = {"accounts.User": "password"}
# Authorization plumbing, not business data (and one query per user if serialized).
SKIPPED_RELATIONS = {"accounts.User": {"groups", "user_permissions"}}
CHUNK = 2000


@dataclass(frozen=True)
class BusinessTable:
    """A table whose every row the manifest checksums, and the column it is ordered by."""

    name: str
    order_by: str


def business_models() -> list[type[models.Model]]:
    return [apps.get_model(label) for label in BUSINESS_MODELS]


def business_tables() -> list[BusinessTable]:
    """The business models' tables and their many-to-many tables (e.g. a refund's lines)."""
    tables = []
    for model in business_models():
        tables.append(BusinessTable(model._meta.db_table, model._meta.pk.attname))
        for field in model._meta.local_many_to_many:
            through = field.remote_field.through
            if through is not None and through._meta.auto_created:
                tables.append(BusinessTable(through._meta.db_table, through._meta.pk.attname))
    return tables


def export_model(model: type[models.Model], *, path: Path, include_password_hashes: bool) -> int:
    """Write every row of `model` to `path` (gzip JSON) and return how many were written."""
    label = model._meta.label
    skipped = set(SKIPPED_RELATIONS.get(label, ()))
    if not include_password_hashes and label in PASSWORD_FIELDS:
        skipped.add(PASSWORD_FIELDS[label])
    fields = [
        field.name
        for field in [*model._meta.local_fields, *model._meta.local_many_to_many]
        if field.name not in skipped and not field.primary_key
    ]
    many_to_many = [
        field.name for field in model._meta.local_many_to_many if field.name not in skipped
    ]
    queryset = model._base_manager.order_by("pk").prefetch_related(*many_to_many)
    counted = _Counted(queryset.iterator(chunk_size=CHUNK))
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as stream:
        _Serializer().serialize(counted, stream=stream, fields=fields)
    return counted.count


class _Serializer(json_serializer.Serializer):
    """Django's JSON serializer (the same output, `loaddata` reads it), with each object
    encoded by one `json.dumps` (the C encoder) and written at once: `json.dump` writes
    token by token in pure Python, which was two thirds of an export's time."""

    def end_object(self, obj) -> None:
        separator = "" if self.first else ", "
        self.stream.write(separator + json.dumps(self.get_dump_object(obj), **self.json_kwargs))
        self._current = None


class _Counted:
    """An iterator that counts what passed through it."""

    def __init__(self, iterator):
        self._iterator = iterator
        self.count = 0

    def __iter__(self):
        for item in self._iterator:
            self.count += 1
            yield item
