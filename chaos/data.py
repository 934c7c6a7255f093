"""A fresh database for the run: migrated, the demo catalogue, a chaos catalogue with
known stock, and verified shoppers with a saved address, all made through the services."""

import secrets

import pyotp
from django.core.management import call_command
from django.db.models import Max

from accounts import services as account_services
from accounts import tokens
from accounts.models import User
from accounts.twofactor import services as twofactor
from shop.models import Product, StockAdjustment, StockReason, VendorStatus
from shop.services import demo
from shop.services import stock as stock_services

VENDOR_EMAIL = "vendor@example.com"


def prepare(*, shoppers: int, products: int, stock: int) -> dict:
    """Returns the catalogue, the initial stock and the shoppers' credentials."""
    call_command("migrate", interactive=False, verbosity=0)
    demo.seed_demo()
    catalogue = _catalogue(products, stock)
    initial_stock = {p["id"]: stock for p in catalogue}
    boundary = StockAdjustment.objects.aggregate(last=Max("pk"))["last"] or 0
    password = secrets.token_urlsafe(12)
    accounts = [_shopper(index, password) for index in range(shoppers)]
    return {
        "catalogue": catalogue,
        "initial_stock": initial_stock,
        "stock_boundary": boundary,
        "shoppers": accounts,
        "password": password,
        "vendor": {
            "email": VENDOR_EMAIL,
            "password": demo.DEMO_PASSWORD,
            "totp_secret": _authenticator(VENDOR_EMAIL),
        },
    }


def _catalogue(count: int, stock: int) -> list[dict]:
    """`count` products spread over the approved vendors, each set to `stock` units."""
    products = list(
        Product.objects.filter(is_active=True, vendor__status=VendorStatus.APPROVED)
        .select_related("vendor")
        .order_by("pk")
    )
    by_vendor: dict[int, list[Product]] = {}
    for product in products:
        by_vendor.setdefault(product.vendor_id, []).append(product)
    chosen: list[Product] = []
    while len(chosen) < count and any(by_vendor.values()):
        for queue in by_vendor.values():
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    for product in chosen:
        if product.stock != stock:
            stock_services.adjust_stock(
                product_id=product.pk,
                vendor=product.vendor,
                change=stock - product.stock,
                reason=StockReason.CORRECTION,
                note="chaos run: known starting stock",
                acting_user=None,
            )
    return [
        {
            "id": p.pk,
            "slug": p.slug,
            "vendor_id": p.vendor_id,
            "vendor_member": p.vendor.memberships.filter(user__email=VENDOR_EMAIL).exists(),
        }
        for p in chosen
    ]


def _authenticator(email: str) -> str:
    """Shop owners must sign in with a second factor: set up an authenticator app for the
    account and hand its secret to the harness, whose client answers the code step."""
    user = User.objects.get(email=email)
    device = twofactor.start_enrolment(user=user)
    twofactor.confirm_enrolment(user=user, code=pyotp.TOTP(device.secret).now())
    return device.secret


def _shopper(index: int, password: str) -> str:
    email = f"shopper{index:02d}@chaos.example.com"
    user = account_services.register_user(
        email=email, password=password, full_name=f"Chaos Shopper {index}"
    )
    account_services.verify_email(token=tokens.make_verification_token(user))
    account_services.add_address(
        user=user,
        full_name=f"Chaos Shopper {index}",
        line1=f"{index + 1} Fault Lane",
        city="Berlin",
        postal_code="10115",
        country="DE",
    )
    return email
