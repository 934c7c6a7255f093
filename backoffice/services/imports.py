"""CSV import of a vendor's products: every row is validated first, then all rows are
imported in one transaction, or none."""

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction

from accounts.models import User
from backoffice.services import products as product_services
from project import csv as safe_csv
from project import page_cache
from project.db import scope
from project.errors import DomainError
from shop.models import Category, Product, StockReason, Vendor
from shop.services import stock as stock_services

MAX_BYTES = 1_048_576
MAX_ROWS = 5_000
REQUIRED_COLUMNS = ("slug", "name", "category", "price", "stock", "active")
COLUMNS = (*REQUIRED_COLUMNS, "description")
TRUE_VALUES = {"1", "true", "yes", "y", "active"}
FALSE_VALUES = {"0", "false", "no", "n", "inactive"}
MAX_PRICE = Decimal("99999999.99")
MAX_STOCK = 2_147_483_647
NAME_MAX_LENGTH = 200
SLUG_MAX_LENGTH = 220


@dataclass(frozen=True)
class RowError:
    """The problems of one CSV row; `row` counts like a spreadsheet (the header is row 1)."""

    row: int
    errors: list[str]


@dataclass(frozen=True)
class ImportSummary:
    created: int
    updated: int
    stock_changes: int


@dataclass
class _Row:
    row: int
    slug: str
    name: str
    category: Category
    price: Decimal
    stock: int
    active: bool
    description: str | None  # None: the file has no description, keep the current one
    existing: Product | None = None


class ImportRejected(DomainError):
    """The file was refused; nothing was imported. `row_errors` lists each bad row."""

    code = "import_rejected"

    def __init__(self, message: str, *, row_errors: list[RowError] | None = None) -> None:
        super().__init__(message)
        self.row_errors = row_errors or []


@dataclass
class _Lookups:
    categories: dict[str, Category]
    products: dict[str, Product]  # by slug, any vendor's
    seen_slugs: dict[str, int] = field(default_factory=dict)


def _read(upload: UploadedFile) -> list[dict[str, str]]:
    if upload.size is not None and upload.size > MAX_BYTES:
        raise ImportRejected("The file is larger than 1 MB; split it into smaller files.")
    raw = upload.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise ImportRejected("The file is larger than 1 MB; split it into smaller files.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRejected(
            "The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again."
        ) from None
    if "\x00" in text:
        raise ImportRejected("The file is not a CSV text file.")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        raise ImportRejected(
            "The first row must be the header "
            f"“{','.join(COLUMNS)}” (description may be left out)."
            + (f" Missing: {', '.join(missing)}." if missing else "")
            + (f" Unknown: {', '.join(unknown)}." if unknown else "")
        )
    reader.fieldnames = header
    rows: list[dict[str, str]] = []
    try:
        for record in reader:
            if len(rows) == MAX_ROWS:
                raise ImportRejected(
                    f"The file has more than {MAX_ROWS:,} rows; split it into smaller files."
                )
            rows.append(record)
    except csv.Error as exc:
        raise ImportRejected(f"The file is not valid CSV: {exc}.") from None
    if not rows:
        raise ImportRejected("The file has a header but no products.")
    return rows


def _validate_row(
    number: int, record: Mapping[str, str | None], *, vendor: Vendor, lookups: _Lookups
) -> _Row | RowError:
    errors: list[str] = []
    if None in record:
        errors.append("The row has more values than the header has columns.")
    # Cells our export escaped against spreadsheet formulas (project.csv) read back as typed.
    values = {name: safe_csv.unescape_cell((record.get(name) or "").strip()) for name in COLUMNS}

    slug = values["slug"].lower()
    existing = None
    if slug:
        try:
            validate_slug(slug)
        except ValidationError:
            errors.append(f"slug “{slug}” may use only letters, numbers, hyphens and underscores.")
        if len(slug) > SLUG_MAX_LENGTH:
            errors.append(f"slug is longer than {SLUG_MAX_LENGTH} characters.")
        if slug in lookups.seen_slugs:
            errors.append(f"slug “{slug}” is already used on row {lookups.seen_slugs[slug]}.")
        else:
            lookups.seen_slugs[slug] = number
        existing = lookups.products.get(slug)
        if existing is not None and existing.vendor_id != vendor.pk:
            errors.append(f"slug “{slug}” belongs to another shop's product; choose another.")
            existing = None

    name = values["name"]
    if not name:
        errors.append("name is missing.")
    elif len(name) > NAME_MAX_LENGTH:
        errors.append(f"name is longer than {NAME_MAX_LENGTH} characters.")

    category = lookups.categories.get(values["category"].lower())
    if not values["category"]:
        errors.append("category is missing.")
    elif category is None:
        errors.append(f"category “{values['category']}” does not exist.")

    price = None
    try:
        price = Decimal(values["price"])
        if not price.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        errors.append(f"price “{values['price']}” is not a number like 12.50.")
        price = None
    if price is not None:
        if price < product_services.MIN_PRICE:
            errors.append("price must be at least 0.01.")
        elif price > MAX_PRICE:
            errors.append("price is too large.")
        elif price != price.quantize(Decimal("0.01")):
            errors.append("price can have at most 2 decimal places.")

    stock = None
    try:
        stock = int(values["stock"])
    except ValueError:
        errors.append(f"stock “{values['stock']}” is not a whole number.")
    if stock is not None and stock < 0:
        errors.append("stock cannot be negative.")
    elif stock is not None and stock > MAX_STOCK:
        errors.append("stock is too large.")

    active_text = values["active"].lower()
    active = True
    if active_text in FALSE_VALUES:
        active = False
    elif active_text and active_text not in TRUE_VALUES:
        errors.append(f"active “{values['active']}” must be yes or no.")

    # (a category, price or stock that is None has added its error)
    if errors or category is None or price is None or stock is None:
        return RowError(row=number, errors=errors)
    return _Row(
        row=number,
        slug=slug,
        name=name,
        category=category,
        price=price,
        stock=stock,
        active=active,
        description=None if record.get("description") is None else values["description"],
        existing=existing,
    )


def validate_rows(*, vendor: Vendor, upload: UploadedFile) -> tuple[list[_Row], list[RowError]]:
    """Read and check every row of the file; (valid rows, errors of the bad rows)."""
    records = _read(upload)
    slugs = {(record.get("slug") or "").strip().lower() for record in records} - {""}
    with scope.system_scope():  # another shop's slug is refused, though RLS hides its product
        products = {product.slug: product for product in Product.objects.filter(slug__in=slugs)}
    lookups = _Lookups(
        categories={category.slug: category for category in Category.objects.all()},
        products=products,
    )
    rows: list[_Row] = []
    row_errors: list[RowError] = []
    for index, record in enumerate(records, start=2):
        result = _validate_row(index, record, vendor=vendor, lookups=lookups)
        if isinstance(result, RowError):
            row_errors.append(result)
        else:
            rows.append(result)
    return rows, row_errors


def import_products(
    *, vendor: Vendor, upload: UploadedFile, acting_user: User | None
) -> ImportSummary:
    """Create or update (by slug) `vendor`'s products from a CSV file: all rows or none.

    Every row is validated before anything is written; a bad row raises ImportRejected
    listing each bad row's errors. Stock changes are recorded as corrections (new
    products' stock as received).
    """
    rows, row_errors = validate_rows(vendor=vendor, upload=upload)
    if row_errors:
        total = len(rows) + len(row_errors)
        raise ImportRejected(
            f"{len(row_errors)} of {total} rows have errors; nothing was imported. "
            "Fix them and upload the file again.",
            row_errors=row_errors,
        )
    created = updated = stock_changes = 0
    reserved = {row.slug for row in rows if row.slug}
    try:
        with transaction.atomic():
            page_cache.catalogue_changed()
            for row in rows:
                if row.existing is None:
                    slug = row.slug or product_services.unique_slug(row.name, reserved=reserved)
                    reserved.add(slug)
                    product = Product.objects.create(
                        vendor=vendor,
                        category=row.category,
                        name=row.name,
                        slug=slug,
                        description=row.description or "",
                        price=row.price,
                        stock=0,
                        is_active=row.active,
                    )
                    created += 1
                    if row.stock:
                        stock_services.adjust_stock(
                            product_id=product.pk,
                            vendor=vendor,
                            change=row.stock,
                            reason=StockReason.RECEIVED,
                            note="Imported from CSV",
                            acting_user=acting_user,
                        )
                        stock_changes += 1
                    continue
                product = (
                    Product.objects.select_for_update()
                    .filter(pk=row.existing.pk, vendor=vendor)
                    .get()
                )
                product_services.audit_price_change(
                    product=product, price=row.price, acting_user=acting_user
                )
                product.name = row.name
                product.category = row.category
                product.price = row.price
                product.is_active = row.active
                if row.description is not None:
                    product.description = row.description
                product.version += 1
                product.save()
                updated += 1
                if stock_services.set_stock(
                    product_id=product.pk,
                    vendor=vendor,
                    new_stock=row.stock,
                    acting_user=acting_user,
                    note="Imported from CSV",
                ):
                    stock_changes += 1
    except (IntegrityError, Product.DoesNotExist):
        raise ImportRejected(
            "Products changed while the file was being imported; nothing was imported. "
            "Upload the file again."
        ) from None
    return ImportSummary(created=created, updated=updated, stock_changes=stock_changes)
