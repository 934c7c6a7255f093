from django.contrib import admin

from shop.models import (
    Cart,
    CartItem,
    Category,
    Order,
    OrderLine,
    Payment,
    Product,
    ReportJob,
    Shipment,
    StockAdjustment,
    Vendor,
    VendorInvitation,
    VendorMembership,
)


class VendorMembershipInline(admin.TabularInline):
    model = VendorMembership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Vendor)
class VendorAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "status", "contact_email", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "slug", "contact_email")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (VendorMembershipInline,)


@admin.register(VendorMembership)
class VendorMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "vendor", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "vendor__name")
    list_select_related = ("user", "vendor")
    raw_id_fields = ("user", "vendor")


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
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
        "currency",
        "card_brand",
        "card_last4",
        "failure_message",
        "created_at",
    )
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
    inlines = (OrderLineInline, PaymentInline)
    date_hierarchy = "created_at"


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
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
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request) -> bool:
        return False


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
class StockAdjustmentAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin):
    list_display = ("order", "vendor", "carrier", "tracking_number", "shipped_by", "shipped_at")
    list_filter = ("carrier", "vendor")
    search_fields = ("tracking_number", "order__id", "vendor__name")
    list_select_related = ("order", "vendor", "shipped_by")
    raw_id_fields = ("order", "vendor", "shipped_by")


@admin.register(ReportJob)
class ReportJobAdmin(admin.ModelAdmin):
    list_display = ("kind", "vendor", "date_from", "date_to", "status", "progress", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("vendor__name",)
    list_select_related = ("vendor",)
    raw_id_fields = ("vendor", "requested_by")
