"""Account reads."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import Address, User


def list_addresses(*, user: User) -> QuerySet[Address]:
    return Address.objects.filter(user=user).order_by("-created_at", "-id")


def access_address(*, user: User, pk: int) -> Address:
    """The user's own address, else 404 (another user's id looks like a missing one)."""
    return get_object_or_404(Address, pk=pk, user=user)
