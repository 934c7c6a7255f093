"""Stock writes. Every change locks the product row, so it serialises with checkout (which
locks the same rows) and no update is lost; stock never goes below zero."""

from django.db import transaction
from django.db.models import F

from accounts.models import User
from project import page_cache
from project.audit import services as audit
from project.errors import DomainError
from shop.models import Product, StockAdjustment, StockReason, Vendor

# Reasons a person may give; sales and returns are recorded by the order services.
MANUAL_REASONS = (StockReason.RECEIVED, StockReason.DAMAGED, StockReason.CORRECTION)


class StockError(DomainError):
    code = "stock_error"


class ProductNotFound(StockError):
    code = "product_not_found"


class InvalidStockChange(StockError):
    code = "invalid_stock_change"


class NegativeStock(StockError):
    code = "negative_stock"


class StockChangedMeanwhile(StockError):
    code = "stock_changed_meanwhile"


def _lock_product(*, product_id: int, vendor: Vendor) -> Product:
    product = (
        Product.objects.select_for_update()
        .filter(pk=product_id, vendor=vendor)
        .only("id", "vendor_id", "name", "slug", "stock")
        .first()
    )
    if product is None:
        raise ProductNotFound("This product does not exist in your shop.")
    return product


def _apply(
    *, product: Product, change: int, reason: str, note: str, acting_user: User | None
) -> StockAdjustment:
    """Apply `change` to a product already locked by the caller and record it."""
    if product.stock + change < 0:
        raise NegativeStock(f"Stock cannot go below 0: only {product.stock} in stock.")
    Product.objects.filter(pk=product.pk).update(stock=F("stock") + change)
    before = product.stock
    product.stock += change
    page_cache.stock_changed(slug=product.slug, before=before, after=product.stock)
    adjustment = StockAdjustment.objects.create(
        vendor_id=product.vendor_id,
        product=product,
        change=change,
        stock_after=product.stock,
        reason=reason,
        note=note,
        created_by=acting_user,
    )
    audit.record(
        "stock.changed",
        actor=acting_user,
        vendor=product.vendor_id,
        target=product,
        changes={"stock": [before, product.stock]},
        metadata={"reason": reason, "note": note} if note else {"reason": reason},
    )
    return adjustment


def adjust_stock(
    *,
    product_id: int,
    vendor: Vendor,
    change: int,
    reason: str,
    note: str = "",
    acting_user: User | None,
) -> StockAdjustment:
    """Add (or, negative, remove) `change` units of one of `vendor`'s products, with a reason.

    Locks the product row (the lock checkout takes too), refuses a change to below zero,
    a zero change and reasons other than received/damaged/correction, and records a
    StockAdjustment. Raises a StockError and then changes nothing.
    """
    if change == 0:
        raise InvalidStockChange("Enter a change other than 0.")
    if reason not in MANUAL_REASONS:
        raise InvalidStockChange("Choose why the stock changes: received, damaged or correction.")
    if reason == StockReason.RECEIVED and change < 0:
        raise InvalidStockChange("Received stock is added: enter a positive change.")
    if reason == StockReason.DAMAGED and change > 0:
        raise InvalidStockChange("Damaged stock is removed: enter a negative change.")
    with transaction.atomic():
        product = _lock_product(product_id=product_id, vendor=vendor)
        return _apply(
            product=product,
            change=change,
            reason=reason,
            note=note.strip(),
            acting_user=acting_user,
        )


def set_stock(
    *,
    product_id: int,
    vendor: Vendor,
    new_stock: int,
    acting_user: User | None,
    note: str = "",
    expected_stock: int | None = None,
) -> StockAdjustment | None:
    """Set the stock of one of `vendor`'s products to `new_stock`, recorded as a correction.

    Locks the product row and computes the delta under the lock. With `expected_stock`
    (the value the person saw), a stock that changed meanwhile, e.g. by a sale, is
    refused instead of being overwritten. Returns None when nothing had to change.
    """
    if new_stock < 0:
        raise NegativeStock("Stock cannot be negative.")
    with transaction.atomic():
        product = _lock_product(product_id=product_id, vendor=vendor)
        if expected_stock is not None and product.stock != expected_stock:
            raise StockChangedMeanwhile(
                f"The stock changed to {product.stock} meanwhile (a sale?); "
                "check it and save again."
            )
        change = new_stock - product.stock
        if change == 0:
            return None
        return _apply(
            product=product,
            change=change,
            reason=StockReason.CORRECTION,
            note=note,
            acting_user=acting_user,
        )
