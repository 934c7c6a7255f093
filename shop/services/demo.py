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
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify
from PIL import Image, ImageDraw

from accounts.models import Address, User
from shop.models import Category, Product, Vendor, VendorMembership, VendorStatus
from shop.services import images
from shop.tasks import images as image_tasks

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
PICTURE_SIZE = (960, 720)  # 4:3, wide enough for the 800 px product-page thumbnail


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
    _give_pictures(categories, slugs=[spec["slug"] for spec in specs])
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


def _user(email: str, **fields: Any) -> User:
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


def _give_pictures(categories: list[Category], *, slugs: list[str]) -> None:
    """Demo products without an image get their own: a generated still life in their
    category's palette, its shapes drawn from the product's slug, so the same product always
    gets the same picture. Each is named like an upload (pixels drawn here need no
    sanitising); the image task makes its thumbnails once the seed commits."""
    storage = Product._meta.get_field("image").storage
    hues = {
        category.pk: index * 360 // len(CATEGORIES) for index, category in enumerate(categories)
    }
    waiting = list(Product.objects.filter(slug__in=slugs, image="").only("slug", "category_id"))
    for product in waiting:
        picture = images.named_image(
            _picture(product.slug, hue=hues.get(product.category_id, 0)),
            name=product.slug,
            extension="jpg",
        )
        name = f"products/demo/{picture.name}"
        if not storage.exists(name):
            name = storage.save(name, picture)
        product.image = name
    Product.objects.bulk_update(waiting, ["image"], batch_size=250)
    unmade = (
        Product.objects.filter(slug__in=slugs).exclude(image="").exclude(thumbnails_for=F("image"))
    )
    for product_id in unmade.values_list("pk", flat=True):
        transaction.on_commit(partial(image_tasks.make_product_thumbnails.enqueue, product_id))


def _picture(slug: str, *, hue: int) -> bytes:
    """A 960x720 JPEG still life: a wall and a table in the category's hue, and on it one
    object (vase, jar, box, ball or stack) with decorations, all chosen and sized from the
    slug."""
    rng = random.Random(slug)
    width, height = PICTURE_SIZE
    accent = (hue + rng.choice([-40, -25, 25, 40, 160])) % 360
    canvas = Image.new(
        "RGB", PICTURE_SIZE, f"hsl({hue}, {rng.randint(25, 45)}%, {rng.randint(86, 92)}%)"
    )
    draw = ImageDraw.Draw(canvas)
    # Soft shapes on the wall behind.
    for _ in range(rng.randint(3, 6)):
        x, y, r = rng.randint(0, width), rng.randint(0, height // 2), rng.randint(30, 140)
        draw.ellipse(
            (x - r, y - r, x + r, y + r),
            fill=f"hsl({rng.choice([hue, accent])}, 40%, {rng.randint(78, 86)}%)",
        )
    # The table.
    table = int(height * rng.uniform(0.62, 0.72))
    draw.rectangle((0, table, width, height), fill=f"hsl({hue}, 30%, {rng.randint(62, 72)}%)")
    draw.rectangle((0, table, width, table + 10), fill=f"hsl({hue}, 30%, 55%)")
    # The object, standing on the table with its shadow.
    centre = width // 2 + rng.randint(-120, 120)
    body_w = rng.randint(180, 300)
    body_h = rng.randint(200, min(380, table - 80))
    colour = f"hsl({accent}, {rng.randint(45, 70)}%, {rng.randint(40, 58)}%)"
    shade = f"hsl({accent}, 50%, 30%)"
    light = f"hsl({accent}, 60%, 80%)"
    draw.ellipse(
        (centre - body_w * 0.7, table + 8, centre + body_w * 0.7, table + 48),
        fill=f"hsl({hue}, 25%, 52%)",
    )
    left, right, top = centre - body_w // 2, centre + body_w // 2, table + 24 - body_h
    kind = rng.choice(["vase", "jar", "box", "ball", "stack"])
    if kind == "vase":
        draw.ellipse((left, top + body_h // 3, right, table + 28), fill=colour)
        draw.rectangle(
            (centre - body_w // 6, top, centre + body_w // 6, top + body_h // 2), fill=colour
        )
        draw.ellipse((centre - body_w // 4, top - 14, centre + body_w // 4, top + 14), fill=shade)
    elif kind == "jar":
        draw.rounded_rectangle((left, top + 40, right, table + 28), radius=40, fill=colour)
        draw.rounded_rectangle((left + 16, top, right - 16, top + 56), radius=12, fill=shade)
    elif kind == "box":
        draw.rounded_rectangle((left, top, right, table + 28), radius=10, fill=colour)
        draw.rectangle((left, top + body_h // 3, right, top + body_h // 3 + 26), fill=light)
    elif kind == "ball":
        size = min(body_w, body_h) + 40
        draw.ellipse(
            (centre - size // 2, table + 28 - size, centre + size // 2, table + 28), fill=colour
        )
    else:
        layers = rng.randint(3, 5)
        step = body_h // layers
        for layer in range(layers):
            inset = layer * rng.randint(8, 20)
            tone = f"hsl({(accent + layer * 12) % 360}, 55%, {42 + layer * 7}%)"
            draw.rounded_rectangle(
                (
                    left + inset,
                    table + 28 - (layer + 1) * step,
                    right - inset,
                    table + 28 - layer * step - 4,
                ),
                radius=8,
                fill=tone,
            )
    # A highlight and a few dots of pattern on the object.
    draw.ellipse(
        (left + body_w * 0.18, top + body_h * 0.45, left + body_w * 0.3, top + body_h * 0.7),
        fill=light,
    )
    for _ in range(rng.randint(0, 7)):
        x = rng.randint(left + 30, right - 30)
        y = rng.randint(top + body_h // 2, table)
        draw.ellipse((x - 7, y - 7, x + 7, y + 7), fill=light)
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


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
