"""Vendors' API keys: made (the secret shown once), used, revoked.

A key is `bzk_` and 43 URL-safe characters (32 random bytes). Only its SHA-256 is stored: a
fast hash is enough for a secret with 256 bits of entropy, and it lets a request find its key
with one indexed lookup. The first 12 characters are kept in clear to tell keys apart.
"""

import datetime
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from api import tokens
from api.models import ApiKey, ApiKeyScope
from project.audit import services as audit
from project.errors import DomainError
from shop.models import Vendor

PREFIX = "bzk_"
SHOWN_PREFIX_LENGTH = 12
# last_used_at is written at most this often per key: a busy integration costs one UPDATE a
# minute, not one per request.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


class KeyAlreadyRevoked(DomainError):
    code = "api_key_already_revoked"


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str  # the whole key: shown once, never stored


def is_api_key(token: str) -> bool:
    return token.startswith(PREFIX)


def create_key(*, vendor: Vendor, name: str, scope: str, acting_user: User) -> NewKey:
    """Make a key for one of the vendor's integrations; records api.key_created."""
    if scope not in ApiKeyScope.values:
        raise DomainError("Choose read or read-write.", code="api_key_bad_scope")
    secret = PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        key = ApiKey.objects.create(
            vendor=vendor,
            name=name.strip(),
            prefix=secret[:SHOWN_PREFIX_LENGTH],
            key_hash=tokens.digest(secret),
            scope=scope,
            created_by=acting_user,
        )
        audit.record(
            "api.key_created",
            actor=acting_user,
            vendor=vendor,
            target=key,
            metadata={"scope": scope, "prefix": key.prefix},
        )
    return NewKey(key=key, secret=secret)


def revoke_key(*, vendor: Vendor, key_id: int, acting_user: User) -> ApiKey:
    """Revoke one of the vendor's keys (locked; refused when revoked already); its next
    request is refused. Records api.key_revoked."""
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().get(vendor=vendor, pk=key_id)
        if key.revoked_at is not None:
            raise KeyAlreadyRevoked(f"The key “{key.name}” was revoked already.")
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit.record(
            "api.key_revoked",
            actor=acting_user,
            vendor=vendor,
            target=key,
            metadata={"prefix": key.prefix},
        )
    return key


def record_use(*, key: ApiKey) -> None:
    """Note that the key was used now, unless that was noted less than a minute ago (a
    conditional UPDATE, so concurrent requests write it once)."""
    now = timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION), pk=key.pk
    ).update(last_used_at=now)
