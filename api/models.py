from django.conf import settings
from django.db import models

from shop.models import Vendor


class ApiKeyScope(models.TextChoices):
    READ = "read", "Read only"
    READ_WRITE = "read_write", "Read and write"


class ApiKey(models.Model):
    """A vendor's long-lived key for one integration. The key itself is shown once, when it
    is made; only its SHA-256 is kept (keys are 32 random bytes, so a fast hash is enough),
    with a short prefix to tell keys apart in the list."""

    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=12, choices=ApiKeyScope.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class RefreshToken(models.Model):
    """One refresh token handed out. Each works once: refreshing marks it used and issues the
    next of its family (one sign-in's chain); a used one presented again revokes the family."""

    token_id = models.CharField(max_length=32, primary_key=True)  # the JWT's jti
    family = models.CharField(max_length=32, db_index=True)
    # The token that was exchanged for this one (None: the sign-in that started the family).
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # SHA-256 of the whole token: the token itself is never stored, and a token minted with
    # a leaked signing key for a known jti still does not match.
    token_hash = models.CharField(max_length=64, db_default="", blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_refresh_tokens"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"refresh {self.token_id} of {self.family}"


class IdempotencyRecord(models.Model):
    """The first answer to a write sent with an `Idempotency-Key`, per caller, so a retry gets
    it again. `fingerprint` (method, path and body) refuses the key reused for another request."""

    owner = models.CharField(max_length=40)  # "user:<id>" or "key:<id>"
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="api_idempotency_owner_key")
        ]

    def __str__(self) -> str:
        return f"{self.owner} {self.key}"
