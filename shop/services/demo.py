"""Demo data for a fresh shop: vendors, categories, 500 products and three accounts.

Deterministic (one seeded random generator, fixed dates) and idempotent: rows are
looked up by slug or email and only missing ones are created, so a second run
changes nothing.
"""

import io
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from PIL import Image, ImageDraw

from accounts.models import Address, User
from shop.models import Category, Product, Vendor, VendorMembership, VendorStatus
from shop.services import images

SEED = 2026
DEMO_PASSWORD = "bazaar-demo"  # noqa: S105 - the documented demo password
PRODUCT_COUNT = 500
# Products are dated back from here, a few hours apart, so "newest" has a stable order.
NEWEST_PRODUCT_AT = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

VENDORS = [
    ("Fjord & Field", "Scandinavian homeware, textiles and kitchen things."),
    ("Copper Kettle Co.", "Small-batch tea, coffee and everything to brew them."),
    ("Paper Lantern", "Stationery, notebooks and art supplies."),
    ("Green Thumb Gardens", "Plants, pots and garden tools."),
    ("Trail & Tide", "Outdoor gear for walks, water and weekends away."),
]

CATEGORIES: dict[str, list[str]] = {
    "Kitchen": ["Chef's Knife", "Cutting Board", "Salad Bowl", "Spice Grinder", "Pasta Pot"],
    "Tea & Coffee": ["Loose-Leaf Tea", "Coffee Beans", "Teapot", "Pour-Over Set", "Mug"],
    "Stationery": ["Notebook", "Fountain Pen", "Desk Planner", "Pencil Set", "Letter Paper"],
    "Art Supplies": ["Watercolour Set", "Sketchbook", "Brush Set", "Ink Bottle", "Easel"],
    "Home Decor": ["Candle", "Vase", "Wall Print", "Cushion", "Table Lamp"],
    "Textiles": ["Linen Towel", "Wool Blanket", "Table Runner", "Apron", "Tote Bag"],
    "Garden": ["Trowel", "Watering Can", "Seed Kit", "Plant Pot", "Pruning Shears"],
    "Plants": ["Fern", "Snake Plant", "Olive Tree", "Herb Trio", "Succulent"],
    "Outdoor": ["Daypack", "Water Bottle", "Camping Stove", "Headlamp", "Hammock"],
    "Travel": ["Packing Cube", "Passport Wallet", "Travel Pillow", "Dry Bag", "Wash Kit"],
    "Toys & Games": ["Puzzle", "Board Game", "Wooden Train", "Kite", "Card Game"],
    "Wellbeing": ["Bath Salts", "Yoga Mat", "Soap Bar", "Body Oil", "Sleep Mask"],
}

ADJECTIVES = [
    "Classic", "Handmade", "Everyday", "Nordic", "Rustic", "Compact", "Deluxe", "Vintage",
    "Organic", "Recycled", "Oak", "Linen", "Copper", "Ceramic", "Cotton", "Walnut",
    "Minimal", "Sunny", "Midnight", "Coastal",
]  # fmt: skip
PRAISE = [
    "Made in small batches and built to last.",
    "A customer favourite, restocked every season.",
    "Thoughtfully packed in plastic-free materials.",
    "Designed to be used every day and loved for years.",
    "A lovely gift, or a treat for yourself.",
]
PRICE_ENDINGS = [0, 50, 90, 95, 99]


@dataclass(frozen=True)
class DemoSummary:
    vendors: int
    categories: int
    products: int
    products_created: int
    accounts: int


@transaction.atomic
def seed_demo() -> DemoSummary:
    """Create whatever demo rows are missing and return the resulting counts."""
    rng = random.Random(SEED)
    vendors = [_vendor(name, description) for name, description in VENDORS]
    categories = [_category(name) for name in CATEGORIES]
    accounts = _accounts(first_vendor=vendors[0])
    specs = _product_specs(rng, vendors=vendors, categories=categories)
    created = _create_missing_products(specs)
    _give_pictures(categories)
    return DemoSummary(
        vendors=len(vendors),
        categories=len(categories),
        products=len(specs),
        products_created=created,
        accounts=len(accounts),
    )


def _vendor(name: str, description: str) -> Vendor:
    slug = slugify(name)
    vendor, _ = Vendor.objects.get_or_create(
        slug=slug,
        defaults={
            "name": name,
            "description": description,
            "contact_email": f"hello@{slug}.example.com",
            "status": VendorStatus.APPROVED,
        },
    )
    return vendor


def _category(name: str) -> Category:
    category, _ = Category.objects.get_or_create(
        slug=slugify(name.replace("&", "and")),
        defaults={"name": name, "description": f"Our pick of {name.lower()} from every shop."},
    )
    return category


def _accounts(*, first_vendor: Vendor) -> list[User]:
    shopper = _user("shopper@example.com", full_name="Sam Shopper")
    if shopper.default_address_id is None:
        address = Address.objects.create(
            user=shopper,
            full_name="Sam Shopper",
            line1="Torstraße 120",
            city="Berlin",
            postal_code="10119",
            country="DE",
            phone="+49 30 1234567",
        )
        shopper.default_address = address
        shopper.save(update_fields=["default_address"])
    vendor_user = _user("vendor@example.com", full_name="Val Vendor")
    VendorMembership.objects.get_or_create(
        vendor=first_vendor, user=vendor_user, defaults={"role": VendorMembership.Role.OWNER}
    )
    staff = _user("staff@example.com", full_name="Stella Staff", is_staff=True, is_superuser=True)
    return [shopper, vendor_user, staff]


def _user(email: str, **fields) -> User:
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(
            email, DEMO_PASSWORD, email_verified_at=timezone.now(), **fields
        )
    return user


def _create_missing_products(specs: list[dict]) -> int:
    existing = set(
        Product.objects.filter(slug__in=[s["slug"] for s in specs]).values_list("slug", flat=True)
    )
    missing = [spec for spec in specs if spec["slug"] not in existing]
    if not missing:
        return 0
    products = Product.objects.bulk_create(
        [Product(**{k: v for k, v in spec.items() if k != "created_at"}) for spec in missing],
        batch_size=250,
    )
    # created_at is auto_now_add, so the fixed demo dates go in with a second statement.
    for product, spec in zip(products, missing, strict=True):
        product.created_at = spec["created_at"]
    Product.objects.bulk_update(products, ["created_at"], batch_size=250)
    return len(products)


def _give_pictures(categories: list[Category]) -> None:
    """Demo products without an image get their category's picture: one generated,
    deterministic image per category, re-encoded and named like any upload (so the shop
    shows images, served from MEDIA_URL, from the first `make run`)."""
    storage = Product._meta.get_field("image").storage
    for index, category in enumerate(categories):
        waiting = Product.objects.filter(category=category, image="")
        if not waiting.exists():
            continue
        picture = images.sanitise_product_image(_picture(index), name=category.slug)
        name = f"products/demo/{picture.name}"
        if not storage.exists(name):
            name = storage.save(name, picture)
        waiting.update(image=name)


def _picture(index: int) -> io.BytesIO:
    """A 640x480 JPEG: a soft background in the category's hue with a few rings."""
    hue = index * 360 // len(CATEGORIES)
    canvas = Image.new("RGB", (640, 480), f"hsl({hue}, 35%, 88%)")
    draw = ImageDraw.Draw(canvas)
    for ring in range(4):
        inset = 70 + ring * 34
        draw.ellipse(
            (inset + 80, inset, 640 - inset - 80, 480 - inset),
            outline=f"hsl({hue}, 45%, {38 + ring * 9}%)",
            width=14,
        )
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=85)
    buffer.seek(0)
    return buffer


def _product_specs(
    rng: random.Random, *, vendors: list[Vendor], categories: list[Category]
) -> list[dict]:
    """The 500 demo products, always generated in full so every run draws the same numbers."""
    specs = []
    category_names = list(CATEGORIES)
    for index in range(PRODUCT_COUNT):
        category_name = category_names[index % len(category_names)]
        noun = CATEGORIES[category_name][(index // len(category_names)) % 5]
        adjective = ADJECTIVES[(index * 7 + index // 60) % len(ADJECTIVES)]
        name = f"{adjective} {noun}"
        vendor = vendors[rng.randrange(len(vendors))]
        specs.append(
            {
                "slug": f"{slugify(name)}-{index + 1:03d}",
                "name": name,
                "vendor": vendor,
                "category": categories[index % len(categories)],
                "description": (
                    f"A {adjective.lower()} {noun.lower()} from {vendor.name}. {rng.choice(PRAISE)}"
                ),
                "price": _price(rng),
                "stock": _stock(rng),
                "is_active": rng.random() >= 0.02,
                "created_at": NEWEST_PRODUCT_AT - timedelta(hours=5 * index),
            }
        )
    return specs


def _price(rng: random.Random) -> Decimal:
    euros = rng.randint(3, 249)
    cents = rng.choice(PRICE_ENDINGS)
    return max(Decimal(f"{euros}.{cents:02d}"), Decimal("3.50"))


def _stock(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.08:
        return 0
    if roll < 0.18:
        return rng.randint(1, 5)
    return rng.randint(6, 40)
