"""CSV import: every row validated first, then all rows imported in one transaction, or none."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from backoffice.services import imports as import_services
from shop.models import Product, StockAdjustment
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor

pytestmark = pytest.mark.django_db

HEADER = "slug,name,category,price,stock,active,description\n"


@pytest.fixture
def vendor(vendor_member):
    return vendor_member.vendor_memberships.get().vendor


@pytest.fixture
def member_client(client, vendor_member):
    sign_in_with_second_factor(client, vendor_member)
    return client


@pytest.fixture
def categories():
    return [
        factories.CategoryFactory(name="Mugs", slug="mugs"),
        factories.CategoryFactory(name="Lamps", slug="lamps"),
    ]


@pytest.fixture
def existing(vendor, categories):
    return factories.ProductFactory(
        vendor=vendor,
        category=categories[0],
        name="Old Mug",
        slug="old-mug",
        price=Decimal("4.00"),
        stock=10,
        description="Keep me",
    )


def upload(text: str | bytes, name="products.csv") -> SimpleUploadedFile:
    data = text.encode() if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")


def _snapshot():
    return (
        sorted(
            Product.objects.values_list("slug", "name", "price", "stock", "is_active", "vendor_id")
        ),
        StockAdjustment.objects.count(),
    )


def test_valid_file_creates_and_updates_every_row(vendor, vendor_member, existing):
    summary = import_services.import_products(
        vendor=vendor,
        upload=upload(
            HEADER
            + "old-mug,Old Mug v2,lamps,5.50,7,no,New text\n"
            + ",Desk Lamp,lamps,30,3,yes,\n"
            + "tall-vase,Tall Vase,mugs,12.00,0,,A vase\n"
        ),
        acting_user=vendor_member,
    )

    assert summary == import_services.ImportSummary(created=2, updated=1, stock_changes=2)
    existing.refresh_from_db()
    assert (existing.name, existing.category.slug, existing.price, existing.stock) == (
        "Old Mug v2",
        "lamps",
        Decimal("5.50"),
        7,
    )
    assert (existing.is_active, existing.description) == (False, "New text")
    lamp = Product.objects.get(slug="desk-lamp")
    assert (lamp.vendor, lamp.price, lamp.stock, lamp.is_active) == (
        vendor,
        Decimal("30.00"),
        3,
        True,
    )
    assert Product.objects.get(slug="tall-vase").stock == 0
    history = {(a.product.slug, a.change, a.reason) for a in StockAdjustment.objects.all()}
    assert history == {("old-mug", -3, "correction"), ("desk-lamp", 3, "received")}
    assert set(StockAdjustment.objects.values_list("vendor_id", flat=True)) == {vendor.pk}


def test_a_file_without_description_keeps_descriptions(vendor, vendor_member, existing):
    import_services.import_products(
        vendor=vendor,
        upload=upload("slug,name,category,price,stock,active\nold-mug,Old Mug,mugs,4.00,10,yes\n"),
        acting_user=vendor_member,
    )
    existing.refresh_from_db()
    assert existing.description == "Keep me"


def test_every_bad_row_is_reported_and_nothing_is_imported(vendor, vendor_member, existing):
    factories.ProductFactory(slug="their-mug", name="Their Mug")
    before = _snapshot()
    text = (
        HEADER
        + "old-mug,Old Mug,mugs,6.00,2,yes,fine row\n"  # row 2: valid, but must not be applied
        + "new-one,,nowhere,abc,-1,maybe,\n"  # row 3
        + "their-mug,Theft,mugs,1.00,1,yes,\n"  # row 4
        + "dup,Dup A,mugs,0,1,yes,\n"  # row 5
        + "dup,Dup B,mugs,1.005,1.5,yes,\n"  # row 6
        + "bad slug!,Bad,mugs,1,1,yes,\n"  # row 7
        + ",Extra,mugs,1,1,yes,,surplus\n"  # row 8
    )

    with pytest.raises(import_services.ImportRejected) as caught:
        import_services.import_products(
            vendor=vendor, upload=upload(text), acting_user=vendor_member
        )

    assert caught.value.message == (
        "6 of 7 rows have errors; nothing was imported. Fix them and upload the file again."
    )
    errors = {row_error.row: row_error.errors for row_error in caught.value.row_errors}
    assert errors == {
        3: [
            "name is missing.",
            "category “nowhere” does not exist.",
            "price “abc” is not a number like 12.50.",
            "stock cannot be negative.",
            "active “maybe” must be yes or no.",
        ],
        4: ["slug “their-mug” belongs to another shop's product; choose another."],
        5: ["price must be at least 0.01."],
        6: [
            "slug “dup” is already used on row 5.",
            "price can have at most 2 decimal places.",
            "stock “1.5” is not a whole number.",
        ],
        7: ["slug “bad slug!” may use only letters, numbers, hyphens and underscores."],
        8: ["The row has more values than the header has columns."],
    }
    assert _snapshot() == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"slug,name\n\xff\xfe,x\n", "The file is not UTF-8 text."),
        ("name,price\nMug,3\n", "Missing: slug, category, stock, active."),
        (HEADER.replace("description", "colour") + "a,A,mugs,1,1,yes,red\n", "Unknown: colour."),
        (HEADER, "The file has a header but no products."),
        (b"", "The first row must be the header"),
    ],
)
def test_unreadable_files_are_refused(vendor, vendor_member, categories, content, message):
    with pytest.raises(import_services.ImportRejected, match=message):
        import_services.import_products(
            vendor=vendor, upload=upload(content), acting_user=vendor_member
        )
    assert not Product.objects.exists()


def test_too_many_rows_are_refused(vendor, vendor_member, categories, monkeypatch):
    monkeypatch.setattr(import_services, "MAX_ROWS", 3)
    text = HEADER + "".join(f",Mug {n},mugs,1,1,yes,\n" for n in range(4))

    with pytest.raises(import_services.ImportRejected, match="more than 3 rows"):
        import_services.import_products(
            vendor=vendor, upload=upload(text), acting_user=vendor_member
        )
    assert not Product.objects.exists()


def test_too_large_a_file_is_refused(vendor, vendor_member, categories):
    text = HEADER + ",Mug,mugs,1,1,yes," + "x" * import_services.MAX_BYTES + "\n"

    with pytest.raises(import_services.ImportRejected, match="larger than 1 MB"):
        import_services.import_products(
            vendor=vendor, upload=upload(text), acting_user=vendor_member
        )
    assert not Product.objects.exists()


def test_names_made_into_slugs_stay_unique_within_the_file(vendor, vendor_member, categories):
    factories.ProductFactory(slug="mug")
    import_services.import_products(
        vendor=vendor,
        upload=upload(
            HEADER + ",Mug,mugs,1,1,yes,\n,Mug,mugs,2,1,yes,\nmug-2,Named,mugs,3,1,yes,\n"
        ),
        acting_user=vendor_member,
    )
    assert sorted(Product.objects.filter(vendor=vendor).values_list("slug", flat=True)) == [
        "mug-2",
        "mug-3",
        "mug-4",
    ]


# --- the page ---


def test_import_page_lists_each_bad_row(member_client, existing):
    response = member_client.post(
        reverse("backoffice:product_import"),
        {"file": upload(HEADER + "old-mug,Old Mug,mugs,6.00,2,yes,\n,,mugs,1,1,yes,\n")},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "1 of 2 rows have errors; nothing was imported." in page
    assert '<td class="num" data-label="Row">3</td>' in page
    assert "Name is missing." in page
    existing.refresh_from_db()
    assert (existing.price, existing.stock) == (Decimal("4.00"), 10)


def test_import_page_imports_a_good_file(member_client, vendor, categories):
    response = member_client.post(
        reverse("backoffice:product_import"),
        {"file": upload(HEADER + ",Lamp,lamps,9.99,2,yes,Bright\n")},
        follow=True,
    )

    assert "Imported: 1 created, 0 updated, 1 stock change." in response.content.decode()
    assert Product.objects.get(vendor=vendor).name == "Lamp"


def test_import_page_requires_a_file(member_client):
    response = member_client.post(reverse("backoffice:product_import"), {})
    assert "Choose a CSV file to upload." in response.content.decode()
