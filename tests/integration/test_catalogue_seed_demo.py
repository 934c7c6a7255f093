"""`manage.py seed_demo`: the demo shop, deterministic and idempotent."""

import io
from io import StringIO

import pytest
from django.core.management import call_command
from PIL import Image

from accounts.models import User
from shop.models import Category, Product, Vendor, VendorMembership, VendorStatus
from shop.tasks import images as image_tasks

pytestmark = pytest.mark.django_db


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def _snapshot():
    return {
        "vendors": list(Vendor.objects.order_by("slug").values_list("slug", "status")),
        "categories": list(Category.objects.order_by("slug").values_list("slug", flat=True)),
        "products": list(
            Product.objects.order_by("slug").values_list(
                "slug",
                "name",
                "vendor__slug",
                "category__slug",
                "price",
                "stock",
                "is_active",
                "image",
            )
        ),
        "users": list(User.objects.order_by("email").values_list("email", "password")),
        "memberships": VendorMembership.objects.count(),
    }


def test_creates_the_demo_shop(client):
    output = _seed()

    assert Vendor.objects.filter(status=VendorStatus.APPROVED).count() == 5
    assert Vendor.objects.count() == 5
    assert Category.objects.count() == 12
    assert Product.objects.count() == 500
    assert Product.objects.filter(stock=0).count() > 20
    assert Product.objects.filter(stock__gte=1, stock__lte=5).count() > 20
    assert 0 < Product.objects.filter(is_active=False).count() < 25
    assert User.objects.count() == 3
    assert "5 vendors, 12 categories, 500 products (500 new), 3 accounts" in output
    # Every demo product shows a picture of its own, named after it.
    assert not Product.objects.filter(image="").exists()
    assert Product.objects.values("image").distinct().count() == 500
    mug = Product.objects.filter(category__slug="tea-and-coffee").first()
    assert mug.image.name.startswith(f"products/demo/{mug.slug}-")
    assert client.get(mug.image.url)["Content-Type"] == "image/jpeg"


def test_two_products_of_one_category_get_different_pictures_of_the_same_size():
    _seed()

    first, second = Product.objects.filter(category__slug="kitchen").order_by("slug")[:2]
    first_bytes, second_bytes = first.image.read(), second.image.read()
    assert first_bytes != second_bytes
    for data in (first_bytes, second_bytes):
        with Image.open(io.BytesIO(data)) as picture:
            assert (picture.format, picture.size) == ("JPEG", (960, 720))


def test_seeding_enqueues_the_thumbnails_of_every_picture_after_commit(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as callbacks:
        _seed()

    thumbnail_jobs = [c for c in callbacks if c.func == image_tasks.make_product_thumbnails.enqueue]
    assert sorted(job.args[0] for job in thumbnail_jobs) == sorted(
        Product.objects.values_list("pk", flat=True)
    )


def test_prices_are_decimals_in_range():
    _seed()

    prices = list(Product.objects.values_list("price", flat=True))
    assert min(prices) >= 3
    assert max(prices) <= 250
    assert all(price == price.quantize(price.__class__("0.01")) for price in prices)


def test_accounts_sign_in_with_the_demo_password(client):
    _seed()

    shopper = User.objects.get(email="shopper@example.com")
    vendor_user = User.objects.get(email="vendor@example.com")
    staff = User.objects.get(email="staff@example.com")
    for user in (shopper, vendor_user, staff):
        assert user.check_password("bazaar-demo")
        assert user.is_verified
    assert client.login(email="shopper@example.com", password="bazaar-demo")
    assert shopper.full_name == "Sam Shopper"
    assert shopper.default_address.city == "Berlin"
    assert shopper.default_address.user == shopper
    assert not shopper.is_staff
    assert staff.is_staff
    assert staff.is_superuser
    membership = VendorMembership.objects.get(user=vendor_user)
    assert membership.role == VendorMembership.Role.OWNER
    assert membership.vendor == Vendor.objects.order_by("id").first()


def test_running_twice_changes_nothing():
    _seed()
    before = _snapshot()

    output = _seed()

    assert _snapshot() == before
    assert Product.objects.count() == 500
    assert "500 products (0 new)" in output


def test_is_deterministic():
    _seed()
    first = _snapshot()["products"]
    Product.objects.all().delete()

    _seed()

    assert _snapshot()["products"] == first
