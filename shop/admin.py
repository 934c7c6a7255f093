from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from backoffice.forms import products as product_forms
from backoffice.services import onboarding as onboarding_services
from project import files, page_cache
from project.audit import admin_hooks
from project.errors import DomainError
from shop.models import (
    Cart,
    CartItem,
    Category,
    Order,
    OrderLine,
    Payment,
    Product,
    Refund,
    ReportJob,
    ReportStatus,
    Shipment,
    StockAdjustment,
    Vendor,
    VendorInvitation,
    VendorMembership,
)
from shop.services import refunds as refund_services
from shop.services import reports as report_services

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _ProductCount(TypedDict):  # what VendorAdmin.get_queryset annotates
    _product_count: int


class AuditTrailAdmin(admin.ModelAdmin):
    """Money and stock records change only through services: staff read them, never add or
    delete them by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class CatalogueAdmin(admin.ModelAdmin):
    """Staff edits of what the shop's pages show date every cached catalogue page."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        page_cache.catalogue_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        page_cache.catalogue_changed()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        page_cache.catalogue_changed()


class VendorMembershipInline(admin.TabularInline):
    model = VendorMembership
    extra = 0
    raw_id_fields = ("user",)


# Staff decisions on a vendor: the admin action and the change-page button call the same
# onboarding service. name -> (service, past tense for messages, needs a note)
VENDOR_DECISIONS: dict[str, tuple[Callable[..., Vendor], str, bool]] = {
    "approve": (onboarding_services.approve_vendor, "approved", False),
    "reject": (onboarding_services.reject_vendor, "rejected", True),
    "suspend": (onboarding_services.suspend_vendor, "suspended", True),
    "reinstate": (onboarding_services.reinstate_vendor, "reinstated", False),
}


@admin.register(Vendor)
class VendorAdmin(CatalogueAdmin):
    list_display = (
        "name",
        "status",
        "applied_by",
        "product_count",
        "contact_email",
        "created_at",
        "reviewed_at",
    )
    list_filter = ("status", ("reviewed_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("name", "slug", "contact_email", "applied_by__email")
    list_select_related = ("applied_by",)
    # Status changes only through the decisions below, which email the outcome.
    readonly_fields = ("status", "applied_by", "reviewed_at", "review_note", "created_at")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (VendorMembershipInline,)
    date_hierarchy = "created_at"
    actions = ("approve_selected", "reject_selected", "suspend_selected", "reinstate_selected")
    change_form_template = "admin/shop/vendor/change_form.html"

    def get_queryset(self, request):
        return (
            super().get_queryset(request).annotate(_product_count=Count("products", distinct=True))
        )

    @admin.display(description="products", ordering="_product_count")
    def product_count(self, obj: "WithAnnotations[Vendor, _ProductCount]") -> int:
        return obj._product_count

    @admin.action(description="Approve selected vendors", permissions=["change"])
    def approve_selected(self, request, queryset):
        return self._decide_selected(request, queryset, "approve")

    @admin.action(description="Reject selected vendors", permissions=["change"])
    def reject_selected(self, request, queryset):
        return self._decide_selected(request, queryset, "reject")

    @admin.action(description="Suspend selected vendors", permissions=["change"])
    def suspend_selected(self, request, queryset):
        return self._decide_selected(request, queryset, "suspend")

    @admin.action(description="Reinstate selected vendors", permissions=["change"])
    def reinstate_selected(self, request, queryset):
        return self._decide_selected(request, queryset, "reinstate")

    def _decide_selected(self, request, queryset, decision: str):
        """Decisions needing a note first show a page asking for it, then apply to each."""
        needs_note = VENDOR_DECISIONS[decision][2]
        note = request.POST.get("note", "").strip()
        if needs_note and (request.POST.get("confirm") != "yes" or not note):
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"{decision.capitalize()} vendors",
                "decision": decision,
                "action": f"{decision}_selected",
                "queryset": queryset,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "note_missing": request.POST.get("confirm") == "yes",
            }
            return TemplateResponse(request, "admin/shop/vendor/decision_note.html", context)
        for vendor in queryset:
            self._decide_one(request, vendor, decision, note)
        return None

    def _decide_one(self, request, vendor: Vendor, decision: str, note: str) -> bool:
        service, done, _ = VENDOR_DECISIONS[decision]
        try:
            service(vendor=vendor, acting_user=request.user, note=note)
        except DomainError as exc:
            self.message_user(request, f"{vendor.name}: {exc.message}", messages.ERROR)
            return False
        admin_hooks.log_staff_action(
            request, vendor, f"{done.capitalize()}" + (f": {note}" if note else "") + "."
        )
        self.message_user(request, f"{vendor.name} is {done}; the owner was emailed.")
        return True

    def get_urls(self):
        decide = path(
            "<path:object_id>/decide/<str:decision>/",
            self.admin_site.admin_view(self.decide_view),
            name="shop_vendor_decide",
        )
        return [decide, *super().get_urls()]

    def decide_view(self, request, object_id: str, decision: str):
        """The change page's review buttons (POST only)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        vendor = self.get_object(request, object_id)
        if vendor is None or decision not in VENDOR_DECISIONS:
            raise Http404("No such vendor or decision.")
        if not self.has_change_permission(request, vendor):
            raise PermissionDenied
        self._decide_one(request, vendor, decision, request.POST.get("note", ""))
        return redirect("admin:shop_vendor_change", vendor.pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        vendor = self.get_object(request, object_id)
        decisions = []
        if vendor is not None and self.has_change_permission(request, vendor):
            decisions = [
                {"name": name, "label": name.capitalize(), "needs_note": VENDOR_DECISIONS[name][2]}
                for name in onboarding_services.available_decisions(vendor=vendor)
            ]
        extra_context = {**(extra_context or {}), "vendor_decisions": decisions}
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(VendorMembership)
class VendorMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "vendor", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "vendor__name")
    list_select_related = ("user", "vendor")
    raw_id_fields = ("user", "vendor")


@admin.register(Category)
class CategoryAdmin(CatalogueAdmin):
    list_display = ("name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Product)
class ProductAdmin(CatalogueAdmin):
    # Staff uploads are checked and re-encoded like a vendor's (shop.services.images).
    formfield_overrides = {models.ImageField: {"form_class": product_forms.ProductImageField}}
    list_display = ("name", "vendor", "category", "price", "stock", "is_active", "created_at")
    list_filter = ("is_active", "category", "vendor")
    search_fields = ("name", "slug", "description", "vendor__name")
    list_select_related = ("vendor", "category")
    prepopulated_fields = {"slug": ("name",)}
    raw_id_fields = ("vendor",)
    date_hierarchy = "created_at"


class CartItemInline(admin.TabularInline):
    model = CartItem
    extra = 0
    raw_id_fields = ("product",)


@admin.register(Cart)
class CartAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "created_at", "updated_at")
    search_fields = ("user__email",)
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    inlines = (CartItemInline,)


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    readonly_fields = ("vendor", "product", "product_name", "unit_price", "quantity", "line_total")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    can_delete = False
    fields = (
        "status",
        "amount",
        "refunded_amount",
        "currency",
        "card_brand",
        "card_last4",
        "failure_message",
        "created_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    can_delete = False
    fields = ("status", "amount", "currency", "vendor", "reason", "failure_message", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("number", "customer", "status", "total", "currency", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("id", "customer__email", "ship_name", "ship_city")
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    # Money and status change only through services, never by hand in the admin.
    readonly_fields = ("status", "total", "currency", "created_at", "updated_at")
    inlines = (OrderLineInline, PaymentInline, RefundInline)
    date_hierarchy = "created_at"
    actions = ("refund_whole_order",)

    @admin.action(description="Refund whole order", permissions=["change"])
    def refund_whole_order(self, request, queryset) -> None:
        """Refund what is left of each selected order; the money goes back in the background."""
        for order in queryset.order_by("pk"):
            try:
                refund = refund_services.request_refund(
                    order=order, acting_user=request.user, reason="Refunded by staff"
                )
            except DomainError as exc:
                self.message_user(request, f"{order.number}: {exc.message}", messages.ERROR)
            else:
                admin_hooks.log_staff_action(
                    request,
                    order,
                    f"Refund of the whole order requested: {refund.amount} {refund.currency}.",
                )
                self.message_user(
                    request,
                    f"{order.number}: refund of {refund.amount} {refund.currency} requested.",
                    messages.SUCCESS,
                )


@admin.register(Payment)
class PaymentAdmin(AuditTrailAdmin):
    list_display = (
        "id",
        "order",
        "status",
        "amount",
        "currency",
        "card_brand",
        "card_last4",
        "created_at",
    )
    list_filter = ("status", "card_brand")
    search_fields = ("order__id", "gateway_reference", "idempotency_key", "order__customer__email")
    list_select_related = ("order",)
    readonly_fields = (
        "order",
        "amount",
        "currency",
        "status",
        "idempotency_key",
        "payment_method",
        "card_brand",
        "card_last4",
        "gateway_reference",
        "failure_code",
        "failure_message",
        "refunded_amount",
        "processing_started_at",
        "created_at",
        "updated_at",
    )


@admin.register(Refund)
class RefundAdmin(AuditTrailAdmin):
    """Refunds are requested through the order action or a vendor's cancelled lines and sent
    by a task; here staff only look (money fields are never edited by hand)."""

    list_display = ("id", "order", "status", "amount", "currency", "vendor", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("order__id", "gateway_reference", "idempotency_key", "order__customer__email")
    list_select_related = ("order", "vendor")
    readonly_fields = (
        "order",
        "payment",
        "vendor",
        "lines",
        "amount",
        "currency",
        "status",
        "reason",
        "idempotency_key",
        "gateway_reference",
        "failure_message",
        "requested_by",
        "processing_started_at",
        "processed_at",
        "created_at",
        "updated_at",
    )


@admin.register(VendorInvitation)
class VendorInvitationAdmin(admin.ModelAdmin):
    list_display = (
        "email",
        "vendor",
        "role",
        "invited_by",
        "created_at",
        "accepted_at",
        "revoked_at",
    )
    list_filter = ("role", ("accepted_at", admin.EmptyFieldListFilter))
    search_fields = ("email", "vendor__name")
    list_select_related = ("vendor", "invited_by")
    raw_id_fields = ("vendor", "invited_by", "accepted_by")


@admin.register(StockAdjustment)
class StockAdjustmentAdmin(AuditTrailAdmin):
    list_display = (
        "product",
        "vendor",
        "change",
        "stock_after",
        "reason",
        "created_by",
        "created_at",
    )
    list_filter = ("reason", "vendor")
    search_fields = ("product__name", "note", "vendor__name")
    list_select_related = ("product", "vendor", "created_by")
    date_hierarchy = "created_at"
    # The stock history is an audit trail: read it, never rewrite it.
    readonly_fields = ("vendor", "product", "change", "stock_after", "reason", "note", "created_by")


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin):
    list_display = ("order", "vendor", "carrier", "tracking_number", "shipped_by", "shipped_at")
    list_filter = ("carrier", "vendor")
    search_fields = ("tracking_number", "order__id", "vendor__name")
    list_select_related = ("order", "vendor", "shipped_by")
    raw_id_fields = ("order", "vendor", "shipped_by")


class ReportJobAdminForm(forms.ModelForm):
    class Meta:
        model = ReportJob
        fields = ("kind", "vendor", "date_from", "date_to")

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        if not self.errors:
            try:
                report_services.validate_report_request(
                    kind=cleaned["kind"],
                    vendor=cleaned.get("vendor"),
                    date_from=cleaned["date_from"],
                    date_to=cleaned["date_to"],
                )
            except report_services.InvalidReport as error:
                raise forms.ValidationError(error.message) from error
        return cleaned


@admin.register(ReportJob)
class ReportJobAdmin(admin.ModelAdmin):
    """Staff request reports here (e.g. marketplace sales); a task builds them in the background."""

    form = ReportJobAdminForm
    list_display = (
        "kind",
        "vendor",
        "date_from",
        "date_to",
        "status",
        "progress",
        "rows_written",
        "created_at",
        "download",
    )
    list_filter = ("kind", "status")
    search_fields = ("vendor__name",)
    list_select_related = ("vendor",)
    raw_id_fields = ("vendor",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("kind", "vendor", "date_from", "date_to")
        return (
            "kind",
            "vendor",
            "date_from",
            "date_to",
            "status",
            "progress",
            "rows_written",
            "error",
            "requested_by",
            "created_at",
            "finished_at",
            "expires_at",
            "download",
        )

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        if change:
            return
        report = report_services.request_report(
            kind=obj.kind,
            vendor=obj.vendor,
            date_from=obj.date_from,
            date_to=obj.date_to,
            acting_user=request.user,
        )
        obj.pk = report.pk
        obj.refresh_from_db()

    @admin.display(description="file")
    def download(self, obj: ReportJob) -> str:
        if not obj.is_downloadable:
            return "Expired" if obj.is_expired else "—"
        url = reverse("admin:shop_reportjob_download", args=[obj.pk])
        return format_html('<a href="{}">Download CSV</a>', url)

    def get_urls(self):
        download = self.admin_site.admin_view(self.download_view)
        return [
            path("<int:pk>/download/", download, name="shop_reportjob_download"),
            *super().get_urls(),
        ]

    def download_view(self, request, pk: int):
        """Staff with view permission, while the report has not expired."""
        report = get_object_or_404(ReportJob, pk=pk, status=ReportStatus.DONE)
        if not self.has_view_permission(request, report) or not report.is_downloadable:
            raise Http404
        report_services.record_download(report=report, acting_user=request.user)
        admin_hooks.log_staff_action(request, report, "Downloaded the CSV file.")
        return files.attachment(
            report.file, filename=report.download_name, content_type="text/csv; charset=utf-8"
        )
