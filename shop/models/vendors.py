from django.conf import settings
from django.db import models


class VendorStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    SUSPENDED = "suspended", "Suspended"


class Vendor(models.Model):
    """A shop on the marketplace. Only approved vendors' products are visible."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    description = models.TextField(blank=True)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=32, blank=True)
    payout_details = models.CharField(
        max_length=200, blank=True, help_text="Where payouts go, e.g. account holder and IBAN"
    )
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="vendor_applications",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.CharField(
        max_length=300, blank=True, help_text="Told to the applicant with the decision"
    )
    status = models.CharField(
        max_length=16, choices=VendorStatus.choices, default=VendorStatus.PENDING, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_approved(self) -> bool:
        return self.status == VendorStatus.APPROVED


class VendorMembership(models.Model):
    """Links a user to a vendor they help run."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        STAFF = "staff", "Staff"

    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vendor_memberships"
    )
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["vendor", "user"], name="vendor_membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.vendor} ({self.role})"


class VendorInvitation(models.Model):
    """An invitation for someone to join a vendor's team, accepted through a signed link."""

    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(
        max_length=8, choices=VendorMembership.Role.choices, default=VendorMembership.Role.STAFF
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.vendor}"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None
