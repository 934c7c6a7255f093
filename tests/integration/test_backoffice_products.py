"""Products in the backoffice: services, the list (filters, htmx, inline edit, bulk),
create and edit with validated images, CSV export, and the list's query budget."""

import csv
import io
import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from backoffice.services import products as product_services
from shop.models import Product, StockAdjustment
from tests import factories
from tests.fixtures.database import SCOPE_QUERIES
from tests.fixtures.twofactor import sign_in_with_second_factor

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def vendor(vendor_member):
    return vendor_member.vendor_memberships.get().vendor


@pytest.fixture
def member_client(client, vendor_member):
    sign_in_with_second_factor(client, vendor_member)
    return client


@pytest.fixture
def mugs():
    return factories.CategoryFactory(name="Mugs", slug="mugs")


def image_upload(name="photo.png", image_format="PNG", size=(8, 8)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, "teal").save(buffer, format=image_format)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def _product_data(category_obj, **overrides):
    data = {
        "name": "Blue Mug",
        "category": str(category_obj.pk),
        "price": "12.50",
        "stock": "4",
        "description": "Holds tea.",
        "is_active": "on",
    }
    data.update(overrides)
    return data


# --- services ---


def test_create_product_makes_unique_slugs_and_records_initial_stock(vendor, vendor_member, mugs):
    first = product_services.create_product(
        vendor=vendor,
        acting_user=vendor_member,
        name="Blue Mug",
        category=mugs,
        price=Decimal("9.00"),
        stock=6,
    )
    second = product_services.create_product(
        vendor=vendor,
        acting_user=vendor_member,
        name="Blue  Mug!",
        category=mugs,
        price=Decimal("9.00"),
    )

    assert (first.slug, second.slug) == ("blue-mug", "blue-mug-2")
    assert Product.objects.get(pk=first.pk).stock == 6
    adjustment = StockAdjustment.objects.get()
    assert (adjustment.product_id, adjustment.vendor_id, adjustment.change) == (
        first.pk,
        vendor.pk,
        6,
    )
    assert adjustment.reason == "received"


@pytest.mark.parametrize(
    ("name", "price", "message"),
    [
        ("Mug", Decimal("0.00"), "at least €0.01"),
        ("  ", Decimal("3.00"), "Enter the product's name."),
    ],
)
def test_create_product_refuses_bad_input(vendor, vendor_member, mugs, name, price, message):
    with pytest.raises(product_services.InvalidProduct, match=message):
        product_services.create_product(
            vendor=vendor, acting_user=vendor_member, name=name, category=mugs, price=price
        )
    assert not Product.objects.exists()


def test_update_product_of_another_vendor_is_refused(vendor, vendor_member, mugs):
    foreign = factories.ProductFactory(name="Theirs", price=Decimal("5.00"))

    with pytest.raises(product_services.ProductNotFound):
        product_services.update_product(
            vendor=vendor,
            product_id=foreign.pk,
            acting_user=vendor_member,
            name="Mine",
            category=mugs,
            price=Decimal("1.00"),
        )
    foreign.refresh_from_db()
    assert (foreign.name, foreign.price) == ("Theirs", Decimal("5.00"))


def test_set_products_active_ignores_other_vendors_products(vendor, vendor_member):
    mine = [factories.ProductFactory(vendor=vendor, is_active=True) for _ in range(2)]
    already = factories.ProductFactory(vendor=vendor, is_active=False)
    foreign = factories.ProductFactory(is_active=True)

    changed = product_services.set_products_active(
        vendor=vendor,
        product_ids=[mine[0].pk, mine[1].pk, already.pk, foreign.pk],
        active=False,
        acting_user=vendor_member,
    )

    assert changed == 2
    assert not Product.objects.filter(vendor=vendor, is_active=True).exists()
    assert Product.objects.get(pk=foreign.pk).is_active is True


# --- the list ---


def test_list_shows_only_the_vendors_products(member_client, vendor):
    factories.ProductFactory(vendor=vendor, name="My Lamp")
    factories.ProductFactory(name="Their Lamp")

    response = member_client.get(reverse("backoffice:product_list"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "My Lamp" in page
    assert "Their Lamp" not in page
    assert response.context["backoffice_section"] == "products"


def test_list_filters_and_sorts(member_client, vendor, mugs):
    lamps = factories.CategoryFactory(name="Lamps", slug="lamps")
    factories.ProductFactory(
        vendor=vendor, category=mugs, name="Red Mug", price=Decimal("8"), stock=2
    )
    factories.ProductFactory(
        vendor=vendor, category=mugs, name="Big Mug", price=Decimal("15"), stock=0
    )
    factories.ProductFactory(
        vendor=vendor, category=mugs, name="Old Mug", stock=50, is_active=False
    )
    factories.ProductFactory(vendor=vendor, category=lamps, name="Desk Lamp", stock=9)
    url = reverse("backoffice:product_list")

    def names(query):
        response = member_client.get(url, query)
        assert response.status_code == 200
        return [product.name for product in response.context["page_obj"]]

    assert names({"category": "mugs", "active": "yes", "sort": "price_desc"}) == [
        "Big Mug",
        "Red Mug",
    ]
    assert names({"q": "mug", "sort": "name"}) == ["Big Mug", "Old Mug", "Red Mug"]
    assert names({"stock": "low"}) == ["Red Mug"]
    assert names({"stock": "out"}) == ["Big Mug"]
    assert names({"stock": "in", "sort": "stock_asc"}) == ["Desk Lamp", "Old Mug"]
    assert names({"active": "no"}) == ["Old Mug"]
    # An unknown value is ignored rather than failing the page.
    assert len(names({"sort": "bogus", "stock": "plenty", "category": "nope"})) == 4


def test_list_paginates_by_25(member_client, vendor):
    for n in range(30):
        factories.ProductFactory(vendor=vendor, name=f"Item {n:02d}")

    response = member_client.get(reverse("backoffice:product_list"), {"sort": "name", "page": "2"})

    assert [p.name for p in response.context["page_obj"]] == [f"Item {n}" for n in range(25, 30)]
    assert "30 products" in response.content.decode().replace("<strong>", "").replace(
        "</strong>", ""
    )


def test_htmx_filter_swaps_only_the_table_and_pushes_the_url(member_client, vendor):
    factories.ProductFactory(vendor=vendor, name="Green Vase")
    factories.ProductFactory(vendor=vendor, name="Blue Bowl")

    response = member_client.get(
        reverse("backoffice:product_list"),
        {"q": "vase", "category": "", "sort": "name"},
        headers={"HX-Request": "true", "HX-Target": "product-table"},
    )

    page = response.content.decode()
    assert page.lstrip().startswith('<div id="product-table"')
    assert "<html" not in page
    assert "Green Vase" in page
    assert "Blue Bowl" not in page
    assert response["HX-Push-Url"] == "/backoffice/products/?q=vase&sort=name"
    assert 'href="/backoffice/products/export.csv?q=vase&amp;sort=name"' in page


def test_inline_edit_via_htmx_returns_the_updated_row(member_client, vendor, vendor_member):
    product = factories.ProductFactory(vendor=vendor, name="Jug", price=Decimal("10.00"), stock=5)

    response = member_client.post(
        reverse("backoffice:product_inline_edit", args=[product.pk]),
        {"price": "11.25", "stock": "8", "stock_seen": "5"},
        headers={"HX-Request": "true", "HX-Target": f"product-row-{product.pk}"},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith(f'<tr id="product-row-{product.pk}"')
    assert 'value="11.25"' in page
    assert 'name="stock" value="8"' in page
    assert "Saved." in page
    product.refresh_from_db()
    assert (product.price, product.stock) == (Decimal("11.25"), 8)
    adjustment = StockAdjustment.objects.get()
    assert (adjustment.change, adjustment.reason, adjustment.created_by) == (
        3,
        "correction",
        vendor_member,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"price": "0", "stock": "8", "stock_seen": "5"}, "The price must be at least €0.01."),
        ({"price": "1.234", "stock": "8", "stock_seen": "5"}, "at most 2 decimal places"),
        ({"price": "3.00", "stock": "-1", "stock_seen": "5"}, "Stock cannot be negative."),
        ({"price": "3.00", "stock": "x", "stock_seen": "5"}, "Enter the stock as a whole number."),
        ({"price": "3.00", "stock": "8", "stock_seen": "4"}, "The stock changed to 5 meanwhile"),
    ],
)
def test_inline_edit_with_bad_input_returns_the_row_with_an_error(
    member_client, vendor, data, message
):
    product = factories.ProductFactory(vendor=vendor, price=Decimal("10.00"), stock=5)

    response = member_client.post(
        reverse("backoffice:product_inline_edit", args=[product.pk]),
        data,
        headers={"HX-Request": "true"},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith(f'<tr id="product-row-{product.pk}"')
    assert "Not saved:" in page
    assert message in page
    product.refresh_from_db()
    assert (product.price, product.stock) == (Decimal("10.00"), 5)
    assert not StockAdjustment.objects.exists()


def test_inline_edit_without_javascript_redirects_back_with_a_message(member_client, vendor):
    product = factories.ProductFactory(vendor=vendor, name="Jug", stock=5)
    back = reverse("backoffice:product_list") + "?sort=name&page=1"

    response = member_client.post(
        reverse("backoffice:product_inline_edit", args=[product.pk]),
        {"price": "4.00", "stock": "5", "stock_seen": "5", "next": back},
        follow=True,
    )

    assert response.redirect_chain == [(back, 302)]
    assert "Jug: price and stock saved." in response.content.decode()
    assert Product.objects.get(pk=product.pk).price == Decimal("4.00")


def test_inline_edit_ignores_a_next_url_off_the_list(member_client, vendor):
    product = factories.ProductFactory(vendor=vendor, stock=5)
    response = member_client.post(
        reverse("backoffice:product_inline_edit", args=[product.pk]),
        {"price": "4.00", "stock": "5", "next": "https://evil.example.com/"},
    )
    assert response["Location"] == reverse("backoffice:product_list")


def test_bulk_deactivate_leaves_another_vendors_product_untouched(member_client, vendor):
    mine = factories.ProductFactory(vendor=vendor, is_active=True)
    foreign = factories.ProductFactory(is_active=True)

    response = member_client.post(
        reverse("backoffice:product_bulk"),
        {"action": "deactivate", "products": [mine.pk, foreign.pk]},
        follow=True,
    )

    assert "1 product deactivated." in response.content.decode()
    assert Product.objects.get(pk=mine.pk).is_active is False
    assert Product.objects.get(pk=foreign.pk).is_active is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "activate"}, "Select at least one product."),
        ({"action": "delete", "products": ["1"]}, "Choose activate or deactivate."),
        ({"action": "activate", "products": ["abc"]}, "The selection was not understood"),
    ],
)
def test_bulk_with_bad_input_changes_nothing(member_client, vendor, data, message):
    product = factories.ProductFactory(vendor=vendor, is_active=False)

    response = member_client.post(reverse("backoffice:product_bulk"), data, follow=True)

    assert message in response.content.decode()
    assert Product.objects.get(pk=product.pk).is_active is False


# --- create and edit, with images ---


def test_create_with_a_real_png(member_client, vendor, mugs, media):
    response = member_client.post(
        reverse("backoffice:product_create"),
        _product_data(mugs, image=image_upload("My Photo.PNG")),
        follow=True,
    )

    assert "Blue Mug was created." in response.content.decode()
    product = Product.objects.get()
    assert (product.vendor, product.slug, product.price, product.stock) == (
        vendor,
        "blue-mug",
        Decimal("12.50"),
        4,
    )
    # Re-encoded, named by its content's digest (shop.services.images).
    assert re.fullmatch(r"products/\d{4}/\d{2}/my-photo-[0-9a-f]{16}\.png", product.image.name)
    assert (media / product.image.name).exists()


@pytest.mark.parametrize("image_format", ["JPEG", "WEBP"])
def test_create_accepts_jpeg_and_webp(member_client, mugs, image_format):
    extension = {"JPEG": "jpg", "WEBP": "webp"}[image_format]
    response = member_client.post(
        reverse("backoffice:product_create"),
        _product_data(mugs, image=image_upload(f"pic.{extension}", image_format)),
    )
    assert response.status_code == 302
    assert Product.objects.get().image.name.endswith(f".{extension}")


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (
            SimpleUploadedFile("notes.png", b"just some text, not a picture", "image/png"),
            "This file is not an image we accept. Upload a JPEG, PNG or WebP image.",
        ),
        (
            lambda: image_upload("anim.gif", "GIF"),
            "Upload a file ending in .jpg, .jpeg, .png or .webp.",
        ),
        (lambda: image_upload("anim.png", "GIF"), "GIF images are not accepted."),
        (lambda: image_upload("big.png", size=(64, 64)), "the largest allowed is 100"),
    ],
)
def test_create_rejects_bad_images_and_creates_nothing(
    member_client, mugs, settings, upload, message
):
    settings.PRODUCT_IMAGE_MAX_BYTES = 100
    upload = upload() if callable(upload) else upload
    if "largest" in message:
        assert upload.size > 100
    else:
        settings.PRODUCT_IMAGE_MAX_BYTES = 2_097_152

    response = member_client.post(
        reverse("backoffice:product_create"), _product_data(mugs, image=upload)
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Product.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "Enter the product&#x27;s name."),
        ({"price": "0.00"}, "The price must be at least €0.01."),
        ({"price": "1.999"}, "The price can have at most 2 decimal places."),
        ({"stock": "-2"}, "Stock cannot be negative."),
        ({"category": "999999"}, "That category does not exist."),
    ],
)
def test_create_with_bad_fields_shows_errors(member_client, mugs, overrides, message):
    response = member_client.post(
        reverse("backoffice:product_create"), _product_data(mugs, **overrides)
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Product.objects.exists()


def test_edit_saves_changes_and_keeps_the_slug(member_client, vendor, mugs):
    product = factories.ProductFactory(vendor=vendor, name="Old Name", slug="old-name", stock=7)
    url = reverse("backoffice:product_edit", args=[product.pk])
    assert "Old Name" in member_client.get(url).content.decode()

    data = _product_data(mugs, name="New Name", price="3.30")
    data.pop("is_active")
    response = member_client.post(url, data)

    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.name, product.slug, product.price, product.is_active) == (
        "New Name",
        "old-name",
        Decimal("3.30"),
        False,
    )
    assert product.stock == 7  # stock changes only through the stock page
    assert not StockAdjustment.objects.exists()


def test_edit_replaces_and_removes_the_image(member_client, vendor, mugs):
    product = factories.ProductFactory(vendor=vendor, category=mugs)
    url = reverse("backoffice:product_edit", args=[product.pk])

    member_client.post(url, _product_data(mugs, image=image_upload("a.png")))
    product.refresh_from_db()
    assert re.search(r"/a-[0-9a-f]{16}\.png$", product.image.name)

    member_client.post(url, _product_data(mugs, **{"image-clear": "on"}))
    product.refresh_from_db()
    assert not product.image


# --- export ---


def test_export_streams_the_vendors_products_as_csv(member_client, vendor, mugs):
    factories.ProductFactory(
        vendor=vendor,
        category=mugs,
        name="Cup, large",
        slug="cup-large",
        price=Decimal("7.50"),
        stock=3,
        description="Big",
    )
    factories.ProductFactory(
        vendor=vendor,
        category=mugs,
        name="Cup",
        slug="cup",
        price=Decimal("5.00"),
        stock=0,
        is_active=False,
        description="",
    )
    factories.ProductFactory(name="Not mine", slug="not-mine")

    response = member_client.get(reverse("backoffice:product_export"), {"sort": "name"})

    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="{vendor.slug}-products-'
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["slug", "name", "category", "price", "stock", "active", "description"],
        ["cup", "Cup", "mugs", "5.00", "0", "no", ""],
        ["cup-large", "Cup, large", "mugs", "7.50", "3", "yes", "Big"],
    ]


# --- query budget ---

# user, vendor, categories, count, page of products + the layout (cart badge, backoffice link)
# + the vendor's row-level-security scope around the view
LIST_QUERIES = 7 + SCOPE_QUERIES


def _add_products(vendor, categories, start, stop):
    Product.objects.bulk_create(
        Product(
            vendor=vendor,
            category=categories[n % len(categories)],
            name=f"Widget {n}",
            slug=f"widget-{n}",
            price=Decimal(n % 90) + Decimal("0.99"),
            stock=n % 9,
            is_active=n % 5 != 0,
        )
        for n in range(start, stop)
    )


@pytest.mark.parametrize(
    "query", ["", "?sort=price_desc&page=2", "?q=widget&stock=low&active=yes&category=c-1"]
)
def test_product_list_queries_stay_constant_with_10_or_500_products(
    member_client, vendor, django_assert_max_num_queries, query
):
    categories = [factories.CategoryFactory(slug=f"c-{n}") for n in range(3)]
    url = reverse("backoffice:product_list") + query
    _add_products(vendor, categories, 0, 10)
    member_client.get(url)  # warm up

    with CaptureQueriesContext(connection) as ten:
        assert member_client.get(url).status_code == 200
    _add_products(vendor, categories, 10, 500)

    with django_assert_max_num_queries(len(ten)):
        response = member_client.get(url)
    assert response.status_code == 200
    assert len(ten) <= LIST_QUERIES
