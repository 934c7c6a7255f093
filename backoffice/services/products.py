"""A vendor's product writes: create, edit, price and stock from the list, bulk activation."""

from decimal import Decimal
from functools import partial
from typing import Literal

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import User
from project import page_cache
from project.audit import services as audit
from project.db import scope
from project.errors import DomainError
from shop.models import Category, Product, StockReason, Vendor
from shop.services import images
from shop.services import stock as stock_services
from shop.tasks import images as image_tasks

MIN_PRICE = Decimal("0.01")
SLUG_MAX_LENGTH = 200  # leaves room for a "-NNN" suffix within the field's 220
SLUG_ATTEMPTS = 3


class ProductError(DomainError):
    code = "product_error"


class ProductNotFound(ProductError):
    code = "product_not_found"


class InvalidProduct(ProductError):
    code = "invalid_product"


class ProductChangedMeanwhile(ProductError):
    """The product is no longer at the version the writer read (the API's If-Match)."""

    code = "product_changed_meanwhile"

    def __init__(self, message: str, *, current_version: int) -> None:
        super().__init__(message)
        self.current_version = current_version


def _check(*, name: str, price: Decimal) -> None:
    if not name.strip():
        raise InvalidProduct("Enter the product's name.")
    if price < MIN_PRICE:
        raise InvalidProduct("The price must be at least €0.01.")


def unique_slug(name: str, *, reserved: set[str] | frozenset[str] = frozenset()) -> str:
    """A slug for `name` not used by any product (nor in `reserved`): "mug", "mug-2", …"""
    base = slugify(name)[:SLUG_MAX_LENGTH].strip("-") or "product"
    with scope.system_scope():  # slugs are unique across shops, whose products RLS hides
        taken = set(Product.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    taken |= {slug for slug in reserved if slug.startswith(base)}
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


def _lock(*, vendor: Vendor, product_id: int) -> Product:
    product = Product.objects.select_for_update().filter(pk=product_id, vendor=vendor).first()
    if product is None:
        raise ProductNotFound("This product does not exist in your shop.")
    return product


def create_product(
    *,
    vendor: Vendor,
    acting_user: User | None,
    name: str,
    category: Category,
    price: Decimal,
    stock: int = 0,
    description: str = "",
    is_active: bool = True,
    image: UploadedFile | None = None,
    slug: str = "",
) -> Product:
    """Create one of `vendor`'s products with a unique slug (made from the name unless given).

    An initial stock is recorded in the stock history as received. A slug taken by a
    concurrent create is retried with the next free suffix.
    """
    _check(name=name, price=price)
    if stock < 0:
        raise InvalidProduct("Stock cannot be negative.")
    for attempt in range(SLUG_ATTEMPTS):
        try:
            with transaction.atomic():
                product = Product(
                    vendor=vendor,
                    category=category,
                    name=name.strip(),
                    slug=slug or unique_slug(name),
                    description=description,
                    price=price,
                    stock=0,
                    is_active=is_active,
                )
                if image:
                    product.image = images.sanitise_product_image(image)
                product.save()
                page_cache.catalogue_changed()
                if image:
                    _make_thumbnails_after_commit(product)
                if stock:
                    adjustment = stock_services.adjust_stock(
                        product_id=product.pk,
                        vendor=vendor,
                        change=stock,
                        reason=StockReason.RECEIVED,
                        note="Initial stock",
                        acting_user=acting_user,
                    )
                    product.stock = stock
                    product.version = adjustment.product.version
                return product
        except IntegrityError:
            if slug or attempt == SLUG_ATTEMPTS - 1:
                raise InvalidProduct(
                    "Another product took this address meanwhile; save again."
                ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def update_product(
    *,
    vendor: Vendor,
    product_id: int,
    acting_user: User | None,
    name: str,
    category: Category,
    price: Decimal,
    description: str = "",
    is_active: bool = True,
    image: UploadedFile | Literal[False] | None = None,
    expected_version: int | None = None,
) -> Product:
    """Edit one of `vendor`'s products; the slug (its public address) stays the same.

    `image`: a new upload replaces it, False removes it, None keeps it. Stock is not
    edited here: it changes through the stock service, with a reason. With
    `expected_version` (what the writer read), a product changed meanwhile is refused
    (ProductChangedMeanwhile), checked under the row lock.
    """
    _check(name=name, price=price)
    with transaction.atomic():
        product = _lock(vendor=vendor, product_id=product_id)
        if expected_version is not None and product.version != expected_version:
            raise ProductChangedMeanwhile(
                f"The product changed meanwhile: it is at version {product.version}.",
                current_version=product.version,
            )
        audit_price_change(product=product, price=price, acting_user=acting_user)
        product.name = name.strip()
        product.category = category
        product.price = price
        product.description = description
        product.is_active = is_active
        product.version += 1  # the row is locked: exact
        if image is False:
            product.image = ""
        elif image:
            product.image = images.sanitise_product_image(image)
        product.save()
        page_cache.catalogue_changed()
        if image:
            _make_thumbnails_after_commit(product)
    return product


def _make_thumbnails_after_commit(product: Product) -> None:
    transaction.on_commit(partial(image_tasks.make_product_thumbnails.enqueue, product.pk))


def update_price_and_stock(
    *,
    vendor: Vendor,
    product_id: int,
    price: Decimal,
    stock: int,
    expected_stock: int | None,
    acting_user: User | None,
) -> Product:
    """The list's inline edit: set price and stock together, or change neither.

    A stock that differs from `expected_stock` (what the person saw) is refused, so a
    sale made meanwhile is never overwritten; a stock change is recorded as a correction.
    """
    _check(name="-", price=price)
    with transaction.atomic():
        product = _lock(vendor=vendor, product_id=product_id)
        if product.price != price:
            audit_price_change(product=product, price=price, acting_user=acting_user)
            product.price = price
            product.version += 1
            product.save(update_fields=["price", "version", "updated_at"])
            page_cache.catalogue_changed()
        stock_services.set_stock(
            product_id=product.pk,
            vendor=vendor,
            new_stock=stock,
            expected_stock=expected_stock,
            acting_user=acting_user,
            note="Edited in the product list",
        )
    return Product.objects.select_related("category").get(pk=product.pk)


def audit_price_change(*, product: Product, price: Decimal, acting_user: User | None) -> None:
    """Record a price change about to be saved (call under the product's row lock)."""
    if product.price != price:
        audit.record(
            "product.price_changed",
            actor=acting_user,
            vendor=product.vendor_id,
            target=product,
            changes={"price": [str(product.price), str(price)]},
        )


def set_products_active(
    *, vendor: Vendor, product_ids: list[int], active: bool, acting_user: User | None = None
) -> int:
    """Activate or deactivate the listed products of `vendor`; ids of other vendors' products
    are ignored. Returns how many products actually changed."""
    with transaction.atomic():
        changed = (
            Product.objects.filter(vendor=vendor, pk__in=product_ids)
            .exclude(is_active=active)
            .update(is_active=active, updated_at=timezone.now(), version=F("version") + 1)
        )
        if changed:
            page_cache.catalogue_changed()
        return changed
