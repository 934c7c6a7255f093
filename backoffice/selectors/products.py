"""Reads of a vendor's own products and their stock history; never another vendor's rows."""

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from shop.models import Category, Product, StockAdjustment, Vendor
from shop.models.catalogue import LOW_STOCK_THRESHOLD

SORT_ORDERS: dict[str, tuple[str, ...]] = {
    "newest": ("-created_at", "-id"),
    "name": ("name", "id"),
    "price_asc": ("price", "name", "id"),
    "price_desc": ("-price", "name", "id"),
    "stock_asc": ("stock", "name", "id"),
}
DEFAULT_SORT = "newest"
STOCK_STATES = ("in", "low", "out")


def list_vendor_products(
    *,
    vendor: Vendor,
    q: str = "",
    category: Category | None = None,
    active: bool | None = None,
    stock_state: str = "",
    sort: str = DEFAULT_SORT,
) -> QuerySet[Product]:
    """The vendor's products matching every word of `q` (name or slug) and each filter.

    `stock_state` is "in" (above the low-stock threshold), "low" (1..threshold) or "out" (0).
    """
    products = Product.objects.filter(vendor=vendor).select_related("category")
    for word in q.split():
        products = products.filter(Q(name__icontains=word) | Q(slug__icontains=word))
    if category is not None:
        products = products.filter(category=category)
    if active is not None:
        products = products.filter(is_active=active)
    if stock_state == "in":
        products = products.filter(stock__gt=LOW_STOCK_THRESHOLD)
    elif stock_state == "low":
        products = products.filter(stock__gt=0, stock__lte=LOW_STOCK_THRESHOLD)
    elif stock_state == "out":
        products = products.filter(stock=0)
    return products.order_by(*SORT_ORDERS.get(sort, SORT_ORDERS[DEFAULT_SORT]))


def get_vendor_product(*, vendor: Vendor, pk: int) -> Product:
    """One of the vendor's products with its category, or 404 (also for another vendor's id)."""
    return get_object_or_404(Product.objects.select_related("category"), pk=pk, vendor=vendor)


def list_stock_adjustments(*, vendor: Vendor, product: Product) -> QuerySet[StockAdjustment]:
    """A product's stock history, newest first, with who made each change."""
    return (
        StockAdjustment.objects.filter(vendor=vendor, product=product)
        .select_related("created_by")
        .order_by("-created_at", "-id")
    )


def list_categories() -> QuerySet[Category]:
    """Every category a product may be filed under, by name."""
    return Category.objects.order_by("name")


def find_category(*, slug: str) -> Category | None:
    """The category with this slug, if there is one."""
    return Category.objects.filter(slug=slug).first()
