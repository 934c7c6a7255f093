"""What the shopper endpoints read and answer: catalogue, cart, addresses, orders.

Money is a decimal string with two places (`"12.50"`), never a float.
"""

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from ninja import Field, Schema
from pydantic import BaseModel, field_validator, model_validator
from pydantic_core import PydanticCustomError

from shop.gateways.simulated import luhn_valid

# 13 to 19 digits, allowing the spaces or dashes a person types between groups, not inside a
# longer run of letters and digits (an opaque token's characters are not a card number); card
# numbers never start with 0.
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])[1-9](?:[ -]?\d){12,18}(?![0-9A-Za-z])")
CARD_NUMBER_REFUSED = (
    "This looks like a card number. Send only the payment token your card form got from the "
    "payment processor; card numbers must never be sent to this API."
)


def card_number_fields(value: Any, path: str = "") -> list[str]:
    """The dotted paths, in a JSON value, of strings or numbers that look like a card number
    (13 to 19 digits passing the Luhn check)."""
    if isinstance(value, dict):
        return [
            found
            for key, item in value.items()
            for found in card_number_fields(item, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(value, list):
        return [
            found
            for index, item in enumerate(value)
            for found in card_number_fields(item, f"{path}.{index}" if path else str(index))
        ]
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        for match in _DIGIT_RUN.finditer(str(value)):
            if luhn_valid(re.sub(r"[ -]", "", match.group())):
                return [path or "__all__"]
    return []


# --- catalogue -----------------------------------------------------------------------------


class CategoryOut(Schema):
    id: int
    name: str
    slug: str


class VendorRef(Schema):
    id: int
    name: str
    slug: str


class ProductCardOut(Schema):
    id: int
    name: str
    slug: str
    price: Decimal
    stock: int
    in_stock: bool
    vendor: VendorRef
    category: CategoryOut


class ProductOut(ProductCardOut):
    description: str
    version: int


class ProductPage(Schema):
    items: list[ProductCardOut]
    page: int
    per_page: int
    count: int = Field(description="Matches counted, at most `count_limit`.")
    more_than_count: bool = Field(description="There are more matches than `count`.")
    next_page: int | None
    spelling: str | None = Field(
        None, description="The corrected search, when the one asked for matched nothing."
    )


# --- cart ----------------------------------------------------------------------------------


class CartItemIn(Schema):
    product_id: int
    quantity: int = Field(1, ge=1, le=10_000)


class QuantityIn(Schema):
    quantity: int = Field(ge=1, le=10_000)


class CartLineOut(Schema):
    product_id: int = Field(description="A cart line is named by its product.")
    name: str
    slug: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal
    available: bool
    problem: str = Field("", description="Why the line cannot be ordered as it is, if so.")


class CartOut(Schema):
    lines: list[CartLineOut]
    count: int
    total: Decimal
    can_check_out: bool


# --- addresses -----------------------------------------------------------------------------


class AddressIn(Schema):
    full_name: str = Field(min_length=1, max_length=150)
    line1: str = Field(min_length=1, max_length=200)
    line2: str = Field("", max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(min_length=2, max_length=2, description="Two-letter code, e.g. DE")
    phone: str = Field("", max_length=32)
    make_default: bool = False

    @field_validator("full_name", "line1", "city", "postal_code", "country")
    @classmethod
    def not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("This field is required.")
        return value

    @field_validator("country")
    @classmethod
    def letters(cls, value: str) -> str:
        if not value.isalpha():
            raise ValueError("Enter a two-letter country code, e.g. DE.")
        return value.upper()


class AddressOut(Schema):
    id: int
    full_name: str
    line1: str
    line2: str
    city: str
    postal_code: str
    country: str
    phone: str
    is_default: bool


# --- orders --------------------------------------------------------------------------------


class OrderIn(BaseModel):
    """A plain pydantic model, not a ninja Schema: its first validator must see the body as the
    client sent it (a Schema hands validators a wrapper that reads it attribute by attribute)."""

    address_id: int
    payment_token: str = Field(
        min_length=1,
        max_length=255,
        description="The token the payment processor gave the client's card form; never a "
        "card number (a body with anything that looks like one is refused, 422).",
    )
    expected_total: Decimal | None = Field(
        None,
        ge=0,
        max_digits=12,
        decimal_places=2,
        description="The total the client showed; the order is refused (409) if it changed.",
    )

    @model_validator(mode="before")
    @classmethod
    def no_card_numbers(cls, data: Any) -> Any:
        fields = card_number_fields(data)
        if fields:
            # The message names the fields, never their values.
            raise PydanticCustomError(
                "card_number", "{fields}: " + CARD_NUMBER_REFUSED, {"fields": ", ".join(fields)}
            )
        return data


class OrderLineOut(Schema):
    product_id: int | None
    product_name: str
    vendor: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal
    status: str


class PaymentOut(Schema):
    status: str
    progress: str = Field(
        description="processing, retrying, confirming, captured, declined, failed, refunded "
        "or refunding"
    )
    card_brand: str
    card_last4: str
    failure_message: str


class ShipmentOut(Schema):
    vendor: str
    carrier: str
    tracking_number: str
    shipped_at: datetime


class OrderSummaryOut(Schema):
    id: int
    number: str
    status: str
    total: Decimal
    currency: str
    created_at: datetime


class OrderOut(OrderSummaryOut):
    lines: list[OrderLineOut]
    payment: PaymentOut | None
    shipments: list[ShipmentOut]
    ship_to: list[str]
