"""Reads of vendors' API keys, always one vendor's."""

from django.db.models import F, QuerySet
from django.shortcuts import get_object_or_404

from api import tokens
from api.models import ApiKey
from shop.models import Vendor


def list_keys(*, vendor: Vendor) -> QuerySet[ApiKey]:
    """The vendor's keys, live ones first, newest first (the backoffice's list)."""
    return (
        ApiKey.objects.filter(vendor=vendor)
        .select_related("created_by")
        .order_by(F("revoked_at").asc(nulls_first=True), "-created_at", "-id")
    )


def access_key(*, vendor: Vendor, pk: int) -> ApiKey:
    """One of this vendor's keys; another vendor's is a 404."""
    return get_object_or_404(ApiKey, vendor=vendor, pk=pk)


async def find_live_key(*, secret: str) -> ApiKey | None:
    """The unrevoked key whose secret this is, with its creator (the request's user)."""
    return (
        await ApiKey.objects.select_related("created_by")
        .filter(key_hash=tokens.digest(secret), revoked_at__isnull=True)
        .afirst()
    )


def get_key_vendor(*, vendor_id: int) -> Vendor:
    return Vendor.objects.get(pk=vendor_id)
