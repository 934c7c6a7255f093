"""Permission rows of the shop endpoints: the catalogue is public; the cart, addresses and
orders are the caller's own (every account is a shopper). Paths name the shopper's objects
(their cart line of vendor A's product, their order, their address), so anyone else gets 404."""

from django.utils import timezone

from shop.gateways import simulated
from tests.integration.api.permissions.rows import Row, everyone, signed_in


def shopper_only(status: int) -> dict[str, int]:
    return {**signed_in(404), "shopper": status}


def payment_token() -> str:
    """A token as the client's card form gets it from the (simulated) processor."""
    return (
        simulated.SimulatedGateway()
        .tokenize_card(
            number="4242424242424242", exp_month=12, exp_year=timezone.now().year + 2, cvc="123"
        )
        .token
    )


ROWS = [
    Row("GET", "/api/v1/catalogue/products", everyone(200)),
    Row(
        "GET",
        "/api/v1/catalogue/products/{ref}",
        everyone(200),
        params=lambda world: {"ref": world.a.product.pk},
    ),
    Row("GET", "/api/v1/catalogue/categories", everyone(200)),
    Row("GET", "/api/v1/cart/", signed_in(200)),
    Row(
        "POST",
        "/api/v1/cart/items",
        signed_in(200),
        body=lambda world: {"product_id": world.a.product.pk, "quantity": 1},
    ),
    # Only the shopper's cart holds a line of A's product.
    Row(
        "PATCH",
        "/api/v1/cart/items/{product_id}",
        shopper_only(200),
        params=lambda world: {"product_id": world.a.product.pk},
        body=lambda world: {"quantity": 2},
    ),
    Row(
        "DELETE",
        "/api/v1/cart/items/{product_id}",
        shopper_only(200),
        params=lambda world: {"product_id": world.a.product.pk},
    ),
    Row("GET", "/api/v1/orders/addresses", signed_in(200)),
    Row(
        "POST",
        "/api/v1/orders/addresses",
        signed_in(201),
        body=lambda world: {
            "full_name": "Grace Hopper",
            "line1": "1 Harbour Road",
            "city": "Hamburg",
            "postal_code": "20095",
            "country": "de",
        },
    ),
    # The address is the shopper's: for anyone else it does not exist.
    Row(
        "POST",
        "/api/v1/orders/",
        shopper_only(201),
        body=lambda world: {
            "address_id": world.shopper_address.pk,
            "payment_token": payment_token(),
        },
    ),
    Row("GET", "/api/v1/orders/", signed_in(200)),
    Row(
        "GET",
        "/api/v1/orders/{order_id}",
        shopper_only(200),
        params=lambda world: {"order_id": world.shopper_order.pk},
    ),
]
