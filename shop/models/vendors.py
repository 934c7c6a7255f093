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
