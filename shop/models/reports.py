from django.conf import settings
from django.db import models
from django.utils import timezone

from project.files import private_storage
from shop.models.vendors import Vendor


class ReportKind(models.TextChoices):
    VENDOR_SALES_BY_DAY = "vendor_sales_by_day", "Sales by day"
    VENDOR_SALES_BY_PRODUCT = "vendor_sales_by_product", "Sales by product"
    MARKETPLACE_SALES = "marketplace_sales", "Marketplace sales"


class ReportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Ready"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


class ReportJob(models.Model):
    """A CSV report generated in the background; vendor reports carry their vendor."""

    kind = models.CharField(max_length=32, choices=ReportKind.choices)
    vendor = models.ForeignKey(
        Vendor, null=True, blank=True, on_delete=models.CASCADE, related_name="reports"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    date_from = models.DateField()
    date_to = models.DateField()
    status = models.CharField(
        max_length=8, choices=ReportStatus.choices, default=ReportStatus.QUEUED, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done")
    rows_written = models.PositiveIntegerField(default=0)
    # Private: a random name in the private storage, downloaded only through a view that
    # checks the reader, until `expires_at` (REPORT_TTL after it finished).
    file = models.FileField(upload_to="reports/%Y/%m/", storage=private_storage, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(date_from__lte=models.F("date_to")), name="report_period_ordered"
            ),
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="report_progress_lte_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.date_from}–{self.date_to}"

    @property
    def is_downloadable(self) -> bool:
        return (
            self.status == ReportStatus.DONE
            and bool(self.file)
            and (self.expires_at is None or self.expires_at > timezone.now())
        )

    @property
    def is_expired(self) -> bool:
        return self.status == ReportStatus.EXPIRED or (
            self.status == ReportStatus.DONE
            and self.expires_at is not None
            and self.expires_at <= timezone.now()
        )

    @property
    def download_name(self) -> str:
        """The file name offered to whoever downloads it (the stored name is random)."""
        owner = self.vendor.slug if self.vendor is not None else "marketplace"
        kind = self.kind.replace("_", "-")
        return f"{owner}-{kind}-{self.date_from:%Y%m%d}-{self.date_to:%Y%m%d}.csv"
