from typing import TYPE_CHECKING, TypedDict

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count

from accounts.models import Address, DataExport, User
from accounts.twofactor import services as twofactor_services
from project.audit import admin_hooks
from shop.models import VendorMembership

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _VendorCount(TypedDict):  # what UserAdmin.get_queryset annotates
    _vendor_count: int


class AddressInline(admin.TabularInline):
    model = Address
    extra = 0
    fields = ("full_name", "line1", "line2", "city", "postal_code", "country", "phone")


class VendorMembershipInline(admin.TabularInline):
    model = VendorMembership
    extra = 0
    autocomplete_fields = ("vendor",)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = (
        "email",
        "full_name",
        "is_verified_display",
        "vendor_count",
        "is_staff",
        "is_active",
        "date_joined",
    )
    list_filter = (
        "is_staff",
        "is_superuser",
        "is_active",
        ("email_verified_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("email", "full_name", "phone")
    readonly_fields = ("date_joined", "last_login", "email_verified_at")
    raw_id_fields = ("default_address",)
    inlines = (AddressInline, VendorMembershipInline)
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name", "phone", "default_address", "email_verified_at")}),
        (
            "Roles and permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "full_name", "password1", "password2")}),
    )
    actions = ("reset_two_factor",)

    @admin.action(description="Reset two-factor sign-in (lost phone and recovery codes)")
    def reset_two_factor(self, request, queryset) -> None:
        reset = [
            user
            for user in queryset
            if twofactor_services.reset_by_staff(user=user, acting_user=request.user)
        ]
        for user in reset:
            admin_hooks.log_staff_action(request, user, "Two-factor sign-in reset.")
        self.message_user(
            request,
            f"Two-factor sign-in reset for {len(reset)} account(s); they set it up again "
            "(staff and shop owners at their next sign-in).",
        )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_vendor_count=Count("vendor_memberships"))

    @admin.display(description="verified", boolean=True, ordering="email_verified_at")
    def is_verified_display(self, obj: User) -> bool:
        return obj.is_verified

    @admin.display(description="vendors", ordering="_vendor_count")
    def vendor_count(self, obj: "WithAnnotations[User, _VendorCount]") -> int:
        return obj._vendor_count


@admin.register(Address)
class AddressAdmin(admin.ModelAdmin):
    list_display = ("full_name", "user", "city", "postal_code", "country", "created_at")
    list_filter = ("country",)
    search_fields = ("full_name", "user__email", "city", "postal_code", "line1")
    list_select_related = ("user",)
    raw_id_fields = ("user",)


@admin.register(DataExport)
class DataExportAdmin(admin.ModelAdmin):
    list_display = ("user", "status", "created_at", "finished_at", "expires_at")
    list_filter = ("status",)
    search_fields = ("user__email",)
    list_select_related = ("user",)
    raw_id_fields = ("user",)
