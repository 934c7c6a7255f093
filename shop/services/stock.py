"""Stock writes. Every change locks the product row, so it serialises with checkout (which
locks the same rows) and no update is lost; stock never goes below zero."""

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class BatchProblem:
    index: int  # the item's position in the batch
    field: str  # "product_id", "version", "stock" or "delta"
    message: str


class StockBatchRefused(StockError):
    """A batch of stock levels was refused whole; `problems` says which items and why."""

    code = "stock_batch_refused"

    def __init__(self, message: str, *, problems: list[BatchProblem]) -> None:
        super().__init__(message)
        self.problems = problems

    @property
    def stale(self) -> bool:
        return any(problem.field == "version" for problem in self.problems)


@dataclass(frozen=True, kw_only=True)
class StockLevel:
    """One item of a batch: a product at the `version` the writer read, and either its new
    `stock` or a `delta` to add (negative removes)."""

    product_id: int
    version: int
    stock: int | None = None
    delta: int | None = None


def _lock_product(*, product_id: int, vendor: Vendor) -> Product:
    product = (
        Product.objects.select_for_update()
        .filter(pk=product_id, vendor=vendor)
        .only("id", "vendor_id", "name", "slug", "stock", "version")
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
    Product.objects.filter(pk=product.pk).update(
        stock=F("stock") + change, version=F("version") + 1
    )
    before = product.stock
    product.stock += change
    product.version += 1
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


def _batch_problem(level: StockLevel, product: Product | None) -> tuple[str, str] | None:
    if product is None:
        return "product_id", "This product does not exist in your shop."
    if (level.stock is None) == (level.delta is None):
        return "stock", "Give either the new stock or a delta, not both."
    if product.version != level.version:
        return "version", f"The product changed meanwhile: it is at version {product.version}."
    if _target(level, product) < 0:
        field = "stock" if level.stock is not None else "delta"
        return field, f"Stock cannot go below 0: only {product.stock} in stock."
    return None


def _target(level: StockLevel, product: Product) -> int:
    return level.stock if level.stock is not None else product.stock + (level.delta or 0)


def set_stock_levels(
    *, vendor: Vendor, levels: Sequence[StockLevel], acting_user: User | None, note: str = ""
) -> list[Product]:
    """Apply a batch of stock levels to `vendor`'s products: all of them, or none.

    Locks the products in id order (as checkout does, so the two never deadlock). The whole
    batch is refused (StockBatchRefused, one problem per bad item) when an item names a
    product that is not the vendor's or is listed twice, was read at another version, or
    would take the stock below zero. Each change is a CORRECTION adjustment (and bumps the
    product's version); the products are returned in the batch's order.
    """
    with transaction.atomic():
        locked = {
            product.pk: product
            for product in Product.objects.select_for_update()
            .filter(pk__in={level.product_id for level in levels}, vendor=vendor)
            .only("id", "vendor_id", "name", "slug", "stock", "version")
            .order_by("pk")
        }
        problems, seen = [], set()
        for index, level in enumerate(levels):
            found = _batch_problem(level, locked.get(level.product_id))
            if found is None and level.product_id in seen:
                found = ("product_id", "This product is listed twice in the batch.")
            seen.add(level.product_id)
            if found is not None:
                problems.append(BatchProblem(index=index, field=found[0], message=found[1]))
        if problems:
            raise StockBatchRefused(
                "Nothing was changed: some items were refused.", problems=problems
            )
        for level in levels:
            product = locked[level.product_id]
            change = _target(level, product) - product.stock
            if change:
                _apply(
                    product=product,
                    change=change,
                    reason=StockReason.CORRECTION,
                    note=note,
                    acting_user=acting_user,
                )
        return [locked[level.product_id] for level in levels]
