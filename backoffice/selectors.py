from accounts.models import User
from shop.models import Product, Vendor, VendorStatus


def get_vendor_for_member(*, user: User) -> Vendor | None:
    """The approved vendor this user is a member of, if any."""
    return (
        Vendor.objects.filter(memberships__user=user, status=VendorStatus.APPROVED)
        .order_by("memberships__created_at")
        .first()
    )


def get_dashboard_summary(*, vendor: Vendor) -> dict[str, int]:
    products = Product.objects.filter(vendor=vendor)
    return {
        "product_count": products.count(),
        "out_of_stock_count": products.filter(stock=0).count(),
    }
