from django.conf import settings
from django.db import models
from django.utils import timezone


class Action(models.TextChoices):
    """Every audited action. Dotted names: <area>.<what happened>."""

    # Sign-in and account security
    LOGIN = "auth.login", "Signed in"
    LOGIN_FAILED = "auth.login_failed", "Sign-in failed"
    LOGOUT = "auth.logout", "Signed out"
    LOCKED_OUT = "auth.locked_out", "Sign-in locked out"
    PASSWORD_CHANGED = "auth.password_changed", "Password changed"
    PASSWORD_RESET_REQUESTED = "auth.password_reset_requested", "Password reset requested"
    PASSWORD_RESET = "auth.password_reset", "Password reset"
    SESSIONS_REVOKED = "auth.sessions_revoked", "Signed out everywhere"
    TWOFACTOR_ENABLED = "twofactor.enabled", "Two-factor enabled"
    TWOFACTOR_DISABLED = "twofactor.disabled", "Two-factor disabled"
    TWOFACTOR_RECOVERY_CODES_GENERATED = (
        "twofactor.recovery_codes_generated",
        "Recovery codes generated",
    )
    TWOFACTOR_RECOVERY_CODE_USED = "twofactor.recovery_code_used", "Recovery code used"
    TWOFACTOR_EMAIL_CODE_SENT = "twofactor.email_code_sent", "Email sign-in code sent"
    TWOFACTOR_FAILED = "twofactor.failed", "Two-factor code refused"
    # Vendor team: roles and membership
    TEAM_INVITED = "team.invited", "Team member invited"
    TEAM_INVITATION_ACCEPTED = "team.invitation_accepted", "Invitation accepted"
    TEAM_INVITATION_REVOKED = "team.invitation_revoked", "Invitation revoked"
    TEAM_MEMBER_REMOVED = "team.member_removed", "Team member removed"
    # Vendor onboarding: the application (its applicant becomes owner) and staff's decisions
    VENDOR_APPLIED = "vendor.applied", "Applied to sell"
    VENDOR_APPROVED = "vendor.approved", "Vendor approved"
    VENDOR_REJECTED = "vendor.rejected", "Vendor rejected"
    VENDOR_SUSPENDED = "vendor.suspended", "Vendor suspended"
    VENDOR_REINSTATED = "vendor.reinstated", "Vendor reinstated"
    # Catalogue money and stock
    PRODUCT_PRICE_CHANGED = "product.price_changed", "Price changed"
    STOCK_CHANGED = "stock.changed", "Stock changed"
    # Orders, payments, refunds
    ORDER_STATUS_CHANGED = "order.status_changed", "Order status changed"
    ORDER_LINES_SHIPPED = "order.lines_shipped", "Order items shipped"
    ORDER_LINE_CANCELLED = "order.line_cancelled", "Order item cancelled"
    PAYMENT_STATUS_CHANGED = "payment.status_changed", "Payment status changed"
    REFUND_REQUESTED = "refund.requested", "Refund requested"
    REFUND_STATUS_CHANGED = "refund.status_changed", "Refund status changed"
    # Data exports
    PERSONAL_DATA_EXPORT_REQUESTED = (
        "export.personal_data_requested",
        "Personal data export requested",
    )
    PERSONAL_DATA_EXPORT_DOWNLOADED = (
        "export.personal_data_downloaded",
        "Personal data export downloaded",
    )
    SALES_REPORT_REQUESTED = "export.sales_report_requested", "Sales report requested"
    SALES_REPORT_GENERATED = "export.sales_report_generated", "Sales report generated"
    SALES_REPORT_DOWNLOADED = "export.sales_report_downloaded", "Sales report downloaded"
    # Webhooks to the vendor's own systems
    WEBHOOK_ENDPOINT_ADDED = "webhook.endpoint_added", "Webhook endpoint added"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated", "Webhook secret rotated"
    WEBHOOK_ENDPOINT_DISABLED = "webhook.endpoint_disabled", "Webhook endpoint disabled"
    WEBHOOK_ENDPOINT_ENABLED = "webhook.endpoint_enabled", "Webhook endpoint enabled"
    WEBHOOK_ENDPOINT_DELETED = "webhook.endpoint_deleted", "Webhook endpoint deleted"
    WEBHOOK_TEST_SENT = "webhook.test_sent", "Webhook test event sent"
    WEBHOOK_DELIVERY_RETRIED = "webhook.delivery_retried", "Webhook delivery retried"
    # Staff in the Django admin
    ADMIN_ADDED = "admin.added", "Admin: added"
    ADMIN_CHANGED = "admin.changed", "Admin: changed"
    ADMIN_DELETED = "admin.deleted", "Admin: deleted"
    ADMIN_ACTION = "admin.action", "Admin: action run"
    # The JSON API's credentials (api/)
    API_KEY_CREATED = "api.key_created", "API key created"
    API_KEY_REVOKED = "api.key_revoked", "API key revoked"
    API_REFRESH_TOKEN_REUSED = "api.refresh_token_reused", "API refresh token reused"


class AuditEntry(models.Model):
    """One security- or money-relevant action. Append-only: the database refuses UPDATE,
    DELETE and TRUNCATE of this table, and the app role may only SELECT and INSERT.

    The actor and vendor are references without a database constraint and without cascade,
    plus a snapshot of who they were, so deleting a user or vendor never touches their history.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=64, choices=Action.choices, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_email = models.CharField(max_length=254, blank=True)
    vendor = models.ForeignKey(
        "shop.Vendor",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    vendor_name = models.CharField(max_length=120, blank=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip = models.CharField("IP address", max_length=45, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        default_permissions = ("view",)
        indexes = [
            models.Index(fields=["vendor", "-created_at"], name="audit_vendor_created"),
            models.Index(fields=["action", "-created_at"], name="audit_action_created"),
            models.Index(fields=["actor", "-created_at"], name="audit_actor_created"),
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
            models.Index(fields=["request_id"], name="audit_request_id"),
        ]

    def __str__(self) -> str:
        who = self.actor_email or "system"
        return f"{self.get_action_display()} by {who} at {self.created_at:%Y-%m-%d %H:%M:%S}"
