"""Catalogue reads: only active products of approved vendors are ever visible to shoppers."""

from decimal import Decimal

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from shop.models import Category, Product, Vendor, VendorStatus

# What a product card needs; the product page loads the full row.
CARD_FIELDS = (
    "id",
    "name",
    "slug",
    "price",
    "stock",
    "image",
    "image_width",
    "image_height",
    "thumbnails_for",
    "created_at",
    "vendor__id",
    "vendor__name",
    "vendor__slug",
    "category__id",
    "category__name",
    "category__slug",
)

SORT_ORDERS: dict[str, tuple[str, ...]] = {
    "newest": ("-created_at", "-id"),
    "price_asc": ("price", "-created_at", "-id"),
    "price_desc": ("-price", "-created_at", "-id"),
}
DEFAULT_SORT = "newest"


def _visible() -> QuerySet[Product]:
    return Product.objects.filter(is_active=True, vendor__status=VendorStatus.APPROVED)


def list_visible_products() -> QuerySet[Product]:
    """Products a shopper may see, shaped for product cards, newest first."""
    return (
        _visible()
        .select_related("vendor", "category")
        .only(*CARD_FIELDS)
        .order_by(*SORT_ORDERS[DEFAULT_SORT])
    )


def search_products(
    *,
    query: str = "",
    category: Category | None = None,
    vendor: Vendor | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    in_stock: bool = False,
    sort: str = DEFAULT_SORT,
) -> QuerySet[Product]:
    """Visible products matching every word of `query` (name or description) and each filter."""
    products = list_visible_products()
    for word in query.split():
        products = products.filter(Q(name__icontains=word) | Q(description__icontains=word))
    if category is not None:
        products = products.filter(category=category)
    if vendor is not None:
        products = products.filter(vendor=vendor)
    if min_price is not None:
        products = products.filter(price__gte=min_price)
    if max_price is not None:
        products = products.filter(price__lte=max_price)
    if in_stock:
        products = products.filter(stock__gt=0)
    return products.order_by(*SORT_ORDERS.get(sort, SORT_ORDERS[DEFAULT_SORT]))


def list_new_products(*, limit: int) -> list[Product]:
    """The most recently added visible products."""
    return list(list_visible_products()[:limit])


def list_featured_products(*, limit: int) -> list[Product]:
    """A stable pick for the home page: the best-stocked products that are in stock.

    Deterministic (ties broken by newest, then id), so the home page does not shuffle
    between requests and stays one query whatever the catalogue's size.
    """
    return list(
        list_visible_products().filter(stock__gt=0).order_by("-stock", "-created_at", "-id")[:limit]
    )


def list_categories() -> QuerySet[Category]:
    """All categories, by name."""
    return Category.objects.order_by("name")


def list_vendors() -> QuerySet[Vendor]:
    """Approved vendors, by name."""
    return Vendor.objects.filter(status=VendorStatus.APPROVED).order_by("name")


def get_category(*, slug: str) -> Category:
    """One category by slug, or 404."""
    return get_object_or_404(Category, slug=slug)


def get_visible_product(*, slug: str) -> Product:
    """One visible product with its vendor and category, or 404."""
    return get_object_or_404(_visible().select_related("vendor", "category"), slug=slug)
