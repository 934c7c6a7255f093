"""The vendor area's request and response bodies. Money is a Decimal, sent as a string."""

import datetime
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, StringConstraints

from backoffice.selectors.orders import VendorOrder
from shop.models import LineStatus, OrderLine, OrderStatus, ReportJob

MAX_STOCK = 2_147_483_647
MAX_BATCH = 200

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Price = Annotated[Decimal, Field(ge=Decimal("0.01"), max_digits=10, decimal_places=2)]
Slug = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=90)]


class ProductOut(Schema):
    id: int
    name: str
    slug: str
    category: str  # the category's slug
    description: str
    price: Decimal
    stock: int
    is_active: bool
    version: int  # also the ETag: send it back as If-Match to change the product
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @staticmethod
    def resolve_category(obj) -> str:
        return obj.category.slug


class ProductCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Name
    category: Slug
    price: Price
    stock: int = Field(0, ge=0, le=MAX_STOCK)
    description: str = Field("", max_length=10_000)
    is_active: bool = True


class ProductChange(Schema):
    """Only the fields sent change. Stock changes through POST /vendor/stock, with history."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    category: Slug | None = None
    price: Price | None = None
    description: str | None = Field(None, max_length=10_000)
    is_active: bool | None = None


class StockItem(Schema):
    model_config = ConfigDict(extra="forbid")

    product_id: int
    version: int = Field(ge=1, description="The product's version (ETag) the change is based on")
    stock: int | None = Field(None, ge=0, le=MAX_STOCK, description="The new stock")
    delta: int | None = Field(None, ge=-MAX_STOCK, le=MAX_STOCK, description="Units to add")


class StockBatch(Schema):
    model_config = ConfigDict(extra="forbid")

    items: list[StockItem] = Field(min_length=1, max_length=MAX_BATCH)
    note: str = Field("", max_length=200, description="Kept in each product's stock history")


class StockLevelOut(Schema):
    product_id: int = Field(validation_alias="id")
    stock: int
    version: int


class StockBatchOut(Schema):
    items: list[StockLevelOut]


class ShipTo(Schema):
    name: str
    line1: str
    line2: str
    city: str
    postal_code: str
    country: str
    phone: str


class OrderLineOut(Schema):
    id: int
    product_id: int | None
    product_name: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal
    status: LineStatus
    shipment_id: int | None
    cancel_reason: str


class ShipmentOut(Schema):
    id: int
    carrier: str
    tracking_number: str
    shipped_at: datetime.datetime


def _selling(order: VendorOrder) -> list[OrderLine]:
    return [line for line in order.vendor_lines if line.status != LineStatus.CANCELLED]


class VendorOrderOut(Schema):
    """An order as this vendor sees it: only its lines, and totals of those lines."""

    id: int
    number: str
    status: OrderStatus
    fulfilment: Literal["to_ship", "shipped", "cancelled"]
    created_at: datetime.datetime
    currency: str
    ship_to: ShipTo
    item_count: int  # units of the vendor's lines that are not cancelled
    subtotal: Decimal  # their total
    lines: list[OrderLineOut] = Field(validation_alias="vendor_lines")

    @staticmethod
    def resolve_fulfilment(obj: VendorOrder) -> str:
        statuses = {line.status for line in obj.vendor_lines}
        if obj.status == OrderStatus.PAID and LineStatus.PENDING in statuses:
            return "to_ship"
        return "shipped" if LineStatus.SHIPPED in statuses else "cancelled"

    @staticmethod
    def resolve_ship_to(obj: VendorOrder) -> dict[str, str]:
        return {
            "name": obj.ship_name,
            "line1": obj.ship_line1,
            "line2": obj.ship_line2,
            "city": obj.ship_city,
            "postal_code": obj.ship_postal_code,
            "country": obj.ship_country,
            "phone": obj.ship_phone,
        }

    @staticmethod
    def resolve_item_count(obj: VendorOrder) -> int:
        return sum(line.quantity for line in _selling(obj))

    @staticmethod
    def resolve_subtotal(obj: VendorOrder) -> Decimal:
        return sum((line.line_total for line in _selling(obj)), Decimal("0.00"))


class VendorOrderDetailOut(VendorOrderOut):
    shipments: list[ShipmentOut] = Field(validation_alias="vendor_shipments")


class ShipIn(Schema):
    model_config = ConfigDict(extra="forbid")

    carrier: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    tracking_number: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)
    ]
    line_ids: list[int] | None = Field(
        None, min_length=1, description="The lines to ship; all the vendor's pending ones if none"
    )


class CancelLineIn(Schema):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ReportIn(Schema):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["vendor_sales_by_day", "vendor_sales_by_product"]
    date_from: datetime.date
    date_to: datetime.date


class ReportOut(Schema):
    id: int
    kind: str
    date_from: datetime.date
    date_to: datetime.date
    status: str  # queued, running, done, failed, expired
    progress: int
    rows_written: int
    error: str
    created_at: datetime.datetime
    finished_at: datetime.datetime | None
    expires_at: datetime.datetime | None
    downloadable: bool = Field(validation_alias="is_downloadable")

    @staticmethod
    def resolve_status(obj: ReportJob) -> str:
        return "expired" if obj.is_expired else obj.status
