"""The shopper's orders: place one from the cart with a payment token, list them, follow one
(status, lines, payment, shipments); and the address book checkout ships to.

Placing an order is the shop's checkout without its pages: the same `place_order` (one
transaction: the cart locked, stock taken, the OrderPlaced event and the pending payment
recorded, the charge enqueued on commit to the payment queue's worker). Only the payment
processor's token reaches the server: the client's card form tokenizes the card at the
processor itself, and a body carrying anything like a card number is refused unread.
"""

import asyncio
from decimal import Decimal
from typing import cast

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Router, Status

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.models import Address, User
from api import auth
from api.errors import ApiError, problems
from api.idempotency import idempotent
from api.pagination import CursorPage, keyset_page
from api.routers.cart import as_shopper
from api.schemas.shop import AddressIn, AddressOut, OrderIn, OrderOut, OrderSummaryOut
from project import ratelimit
from shop.gateways import CardInvalid, CardToken, GatewayError, get_gateway
from shop.selectors import cart as cart_selectors
from shop.selectors import orders as order_selectors
from shop.services import checkout as checkout_services

router = Router(tags=["orders"])


async def _verified_shopper(request: HttpRequest) -> User:
    """Ordering needs a verified email address, as in the shop."""
    user = await auth.shopper(request, write=True)
    if not user.is_verified:
        raise ApiError(403, "Verify your email address before you order.", code="email-unverified")
    return user


# --- addresses -----------------------------------------------------------------------------


def _address_out(address: Address, default_id: int | None) -> dict:
    fields = ("id", "full_name", "line1", "line2", "city", "postal_code", "country", "phone")
    return {name: getattr(address, name) for name in fields} | {
        "is_default": address.pk == default_id
    }


def _list_addresses(user: User) -> list[dict]:
    return [
        _address_out(address, user.default_address_id)
        for address in account_selectors.list_addresses(user=user)
    ]


def _add_address(user: User, payload: AddressIn) -> dict:
    address = account_services.add_address(user=user, **payload.dict())
    return _address_out(address, user.default_address_id)


@router.get(
    "/addresses",
    summary="The shopper's saved addresses",
    response={200: list[AddressOut], **problems(401, 403)},
)
async def list_addresses(request: HttpRequest) -> list[dict]:
    user = await auth.shopper(request)
    return await sync_to_async(_list_addresses)(user)


@router.post(
    "/addresses",
    summary="Save an address",
    response={201: AddressOut, **problems(401, 403, 422)},
)
@idempotent
async def add_address(request: HttpRequest, payload: AddressIn) -> Status[dict]:
    """The first address saved (or one with `make_default`) becomes the default."""
    user = await auth.shopper(request, write=True)
    return Status(201, await sync_to_async(_add_address)(user, payload))


# --- orders --------------------------------------------------------------------------------


def _access_address(user: User, address_id: int) -> Address:
    return account_selectors.access_address(user=user, pk=address_id)


def _card(token: str) -> CardToken:
    return get_gateway().card_token(token)


def _place(request: HttpRequest, address: Address, card: CardToken, total: Decimal | None) -> int:
    order = checkout_services.place_order(
        customer=request.user,  # type: ignore[arg-type]  # as_shopper set it
        cart=cart_selectors.get_cart(request=request),
        address=address,
        card_token=card,
        reviewed_total=total,
    )
    return order.pk


def _order_out(user: User, order_id: int) -> dict:
    state = order_selectors.access_order_state(user=user, pk=order_id, with_lines=True)
    order = state.order
    payment = state.latest_payment
    return {
        "id": order.pk,
        "number": order.number,
        "status": order.status,
        "total": order.total,
        "currency": order.currency,
        "created_at": order.created_at,
        "ship_to": order.shipping_lines,
        "lines": [
            {
                "product_id": line.product_id,
                "product_name": line.product_name,
                "vendor": line.vendor.name,
                "unit_price": line.unit_price,
                "quantity": line.quantity,
                "line_total": line.line_total,
                "status": line.status,
            }
            for line in order.lines.all()
        ],
        "payment": None
        if payment is None
        else {
            "status": payment.status,
            "progress": state.payment_progress,
            "card_brand": payment.card_brand,
            "card_last4": payment.card_last4,
            "failure_message": payment.failure_message,
        },
        "shipments": [
            {
                "vendor": row["vendor"],
                "carrier": row["carrier"],
                "tracking_number": row["tracking_number"],
                "shipped_at": row["shipped_at"],
            }
            for row in order.shipment_rows
        ],
    }


@router.post(
    "",
    summary="Place an order from the cart",
    response={201: OrderOut, **problems(401, 403, 404, 409, 422, 429, 503)},
)
@idempotent
async def place_order(
    request: HttpRequest, payload: OrderIn, response: HttpResponse
) -> Status[dict]:
    """Orders everything in the cart, shipped to `address_id`, paid with `payment_token` (the
    token the payment processor gave the client's card form). The payment is charged in the
    background: the order answers `pending_payment` with its payment `processing`; follow it
    with `GET /orders/{id}`.

    Refused, with nothing ordered or charged: an empty cart, a product sold out or withdrawn,
    or prices that changed from `expected_total` (409); an address not the shopper's (404); a
    token the processor never issued, or a card number anywhere in the body (422). Two
    requests for one cart never make two orders: the second waits for the first and finds the
    cart empty (409 empty-cart).
    """
    user = await _verified_shopper(request)
    # What the order needs is fetched at once: the address (database), the token's card (the
    # processor: a round trip with a real one) and the card-testing limit (Redis).
    limited, address, card = await asyncio.gather(
        sync_to_async(ratelimit.hit, thread_sensitive=False)("checkout_user", str(user.pk)),
        sync_to_async(_access_address)(user, payload.address_id),
        sync_to_async(_card, thread_sensitive=False)(payload.payment_token),
        return_exceptions=True,
    )
    for outcome in (limited, address, card):
        if isinstance(outcome, CardInvalid):
            raise ApiError(
                422,
                "The payment processor does not know this payment token.",
                code="payment-token-invalid",
                errors=[{"field": "payment_token", "message": outcome.message}],
            )
        if isinstance(outcome, GatewayError):
            raise ApiError(
                503,
                "The payment processor cannot be reached; nothing was ordered. Try again.",
                code="payment-processor-unavailable",
                headers={"Retry-After": "5"},
            )
        if isinstance(outcome, BaseException):
            raise outcome
    order_id = await sync_to_async(_place)(
        as_shopper(request, user),
        cast(Address, address),
        cast(CardToken, card),
        payload.expected_total,
    )
    response["Location"] = reverse("api:get_order", kwargs={"order_id": order_id})
    return Status(201, await sync_to_async(_order_out)(user, order_id))


def _orders_page(user: User, cursor: str | None, limit: int) -> dict:
    orders = order_selectors.list_orders_for_customer(customer=user)
    items, next_cursor = keyset_page(orders, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "",
    summary="The shopper's orders, newest first",
    response={200: CursorPage[OrderSummaryOut], **problems(400, 401, 403)},
)
async def list_orders(request: HttpRequest, cursor: str | None = None, limit: int = 20) -> dict:
    """Pages of `limit` (at most 200); pass the page's `next_cursor` as `cursor` for the next."""
    user = await auth.shopper(request)
    return await sync_to_async(_orders_page)(user, cursor, limit)


@router.get(
    "/{order_id}",
    url_name="get_order",
    summary="One of the shopper's orders",
    response={200: OrderOut, **problems(401, 403, 404)},
)
async def get_order(request: HttpRequest, order_id: int) -> dict:
    """Status, lines (with each shop's line status), the latest payment and the shipments.
    Someone else's order is a 404, as one that does not exist."""
    user = await auth.shopper(request)
    return await sync_to_async(_order_out)(user, order_id)
