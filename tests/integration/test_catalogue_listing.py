"""Search, filters, sort, pagination and the htmx fragment of the product listing."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from shop.models import Product
from tests import factories

pytestmark = pytest.mark.django_db

LIST_URL = reverse("shop:product_list")
HTMX_HEADERS = {"HX-Request": "true", "HX-Target": "product-results"}


def _product(name, *, days_ago=0, **fields):
    """A visible product created `days_ago` days ago (created_at is auto_now_add)."""
    product = factories.ProductFactory(name=name, **fields)
    created_at = timezone.now() - timedelta(days=days_ago)
    Product.objects.filter(pk=product.pk).update(created_at=created_at)
    return product


def _names(response) -> list[str]:
    """The product names on the page, in the order shown."""
    return re.findall(r"<h3>(.*?)</h3>", response.content.decode())


# --- search ---------------------------------------------------------------


def test_search_matches_every_word_case_insensitively_in_name_or_description(client):
    _product("Blue Oak Table", days_ago=1)
    _product("Oak Chair", description="Painted BLUE by hand.", days_ago=2)
    _product("Red Table", days_ago=3)
    _product("Blue Lamp", days_ago=4)

    assert _names(client.get(LIST_URL, {"q": "oak blue"})) == ["Blue Oak Table", "Oak Chair"]
    assert _names(client.get(LIST_URL, {"q": "  TABLE  "})) == ["Blue Oak Table", "Red Table"]
    assert _names(client.get(LIST_URL, {"q": "blue table"})) == ["Blue Oak Table"]


def test_search_heading_and_count_say_what_was_found(client):
    _product("Blue Oak Table")
    _product("Blue Lamp")

    content = client.get(LIST_URL, {"q": "blue"}).content.decode()

    assert "Results for “blue”" in content
    assert "<strong>2</strong> products" in content


def test_search_without_matches_shows_the_empty_state(client):
    _product("Blue Lamp")

    response = client.get(LIST_URL, {"q": "submarine"})

    content = response.content.decode()
    assert "No products match your search." in content
    assert "<strong>0</strong> products" in content
    assert '<a href="/products/">Clear filters</a>' in content
    assert _names(response) == []


# --- filters --------------------------------------------------------------


def test_filters_by_category_slug(client):
    kitchen = factories.CategoryFactory(name="Kitchen", slug="kitchen")
    garden = factories.CategoryFactory(name="Garden", slug="garden")
    _product("Pan", category=kitchen, days_ago=1)
    _product("Spade", category=garden, days_ago=2)
    _product("Pot", category=kitchen, days_ago=3)

    assert _names(client.get(LIST_URL, {"category": "kitchen"})) == ["Pan", "Pot"]


def test_category_page_is_the_listing_filtered_to_that_category(client):
    kitchen = factories.CategoryFactory(name="Kitchen", slug="kitchen")
    garden = factories.CategoryFactory(name="Garden", slug="garden")
    _product("Pan", category=kitchen, days_ago=1, price=Decimal("30.00"))
    _product("Spade", category=garden, days_ago=2)
    _product("Pot", category=kitchen, days_ago=3, price=Decimal("10.00"))

    response = client.get(kitchen.get_absolute_url(), {"sort": "price_asc"})

    assert response.status_code == 200
    assert '<h1 id="listing-heading">Kitchen</h1>' in response.content.decode()
    assert _names(response) == ["Pot", "Pan"]


def test_category_page_links_every_category_and_marks_its_own(client):
    kitchen = factories.CategoryFactory(name="Kitchen", slug="kitchen")
    factories.CategoryFactory(name="Garden", slug="garden")

    content = client.get(kitchen.get_absolute_url()).content.decode()

    assert '<li><a href="/c/garden/">Garden</a></li>' in content
    assert '<li><a href="/c/kitchen/" aria-current="page">Kitchen</a></li>' in content


def test_listing_links_every_category_and_marks_none(client):
    factories.CategoryFactory(name="Kitchen", slug="kitchen")

    content = client.get(LIST_URL).content.decode()

    assert '<li><a href="/c/kitchen/">Kitchen</a></li>' in content
    assert '<li aria-current="page">All products</li>' in content


def test_filters_by_vendor_slug(client):
    ours = factories.VendorFactory(slug="ours")
    _product("Ours One", vendor=ours, days_ago=1)
    _product("Theirs")
    _product("Ours Two", vendor=ours, days_ago=2)

    assert _names(client.get(LIST_URL, {"vendor": "ours"})) == ["Ours One", "Ours Two"]


def test_filters_by_price_range_inclusive(client):
    _product("Cheap", price=Decimal("4.99"), days_ago=1)
    _product("Lower Bound", price=Decimal("5.00"), days_ago=2)
    _product("Middle", price=Decimal("12.50"), days_ago=3)
    _product("Upper Bound", price=Decimal("20.00"), days_ago=4)
    _product("Dear", price=Decimal("20.01"), days_ago=5)

    response = client.get(LIST_URL, {"min_price": "5", "max_price": "20.00"})

    assert _names(response) == ["Lower Bound", "Middle", "Upper Bound"]
    assert _names(client.get(LIST_URL, {"min_price": "20"})) == ["Upper Bound", "Dear"]
    assert _names(client.get(LIST_URL, {"max_price": "5"})) == ["Cheap", "Lower Bound"]


def test_filters_to_products_in_stock(client):
    _product("Plenty", stock=20, days_ago=1)
    _product("Sold Out", stock=0, days_ago=2)
    _product("Last One", stock=1, days_ago=3)

    assert _names(client.get(LIST_URL, {"in_stock": "on"})) == ["Plenty", "Last One"]
    assert _names(client.get(LIST_URL)) == ["Plenty", "Sold Out", "Last One"]


def test_combines_search_and_filters(client):
    ours = factories.VendorFactory(slug="ours")
    _product("Oak Board", vendor=ours, price=Decimal("15.00"), stock=5, days_ago=1)
    _product("Oak Spoon", vendor=ours, price=Decimal("4.00"), stock=5, days_ago=2)
    _product("Oak Bowl", vendor=ours, price=Decimal("15.00"), stock=0, days_ago=3)
    _product("Oak Stool", price=Decimal("15.00"), stock=5, days_ago=4)

    response = client.get(
        LIST_URL, {"q": "oak", "vendor": "ours", "min_price": "10", "in_stock": "1"}
    )

    assert _names(response) == ["Oak Board"]


# --- sort -----------------------------------------------------------------


@pytest.fixture
def three_products():
    _product("Middle", price=Decimal("10.00"), days_ago=2)
    _product("Newest", price=Decimal("30.00"), days_ago=1)
    _product("Oldest", price=Decimal("5.00"), days_ago=3)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("newest", ["Newest", "Middle", "Oldest"]),
        ("price_asc", ["Oldest", "Middle", "Newest"]),
        ("price_desc", ["Newest", "Middle", "Oldest"]),
        ("", ["Newest", "Middle", "Oldest"]),
    ],
)
def test_sorts_products(client, three_products, sort, expected):
    assert _names(client.get(LIST_URL, {"sort": sort})) == expected


def test_unknown_sort_falls_back_to_newest_with_a_message(client, three_products):
    response = client.get(LIST_URL, {"sort": "random"})

    assert _names(response) == ["Newest", "Middle", "Oldest"]
    assert "Unknown sort order; showing the newest first." in response.content.decode()


def test_sort_select_shows_the_current_order(client, three_products):
    content = client.get(LIST_URL, {"sort": "price_desc"}).content.decode()

    assert '<option value="price_desc" selected>' in content
    assert '<option value="newest">' in content


# --- validation -----------------------------------------------------------


def test_price_that_is_not_a_number_is_reported_and_ignored(client):
    _product("Cheap", price=Decimal("4.00"), days_ago=1)
    _product("Dear", price=Decimal("40.00"), days_ago=2)

    response = client.get(LIST_URL, {"min_price": "abc", "max_price": "10"})

    assert response.status_code == 200
    assert "Minimum price must be a number." in response.content.decode()
    assert _names(response) == ["Cheap"]


def test_negative_price_is_reported_and_ignored(client):
    _product("Cheap", price=Decimal("4.00"))

    response = client.get(LIST_URL, {"max_price": "-1"})

    assert "Maximum price cannot be negative." in response.content.decode()
    assert _names(response) == ["Cheap"]


def test_minimum_above_maximum_is_reported_and_both_are_ignored(client):
    _product("Cheap", price=Decimal("4.00"), days_ago=1)
    _product("Dear", price=Decimal("40.00"), days_ago=2)

    response = client.get(LIST_URL, {"min_price": "50", "max_price": "10"})

    assert "Minimum price cannot be more than the maximum price." in response.content.decode()
    assert _names(response) == ["Cheap", "Dear"]


def test_unknown_category_or_vendor_in_the_filters_is_reported_and_ignored(client):
    _product("Anything")

    response = client.get(LIST_URL, {"category": "nope", "vendor": "nobody"})

    content = response.content.decode()
    assert "That category does not exist." in content
    assert "That shop does not exist." in content
    assert _names(response) == ["Anything"]


# --- pagination -----------------------------------------------------------


@pytest.fixture
def thirty_products():
    # "Item 01" is the newest, "Item 30" the oldest.
    for number in range(1, 31):
        _product(f"Item {number:02d}", days_ago=number)


def test_paginates_24_per_page(client, thirty_products):
    first = client.get(LIST_URL)
    second = client.get(LIST_URL, {"page": "2"})

    assert _names(first) == [f"Item {n:02d}" for n in range(1, 25)]
    assert _names(second) == [f"Item {n:02d}" for n in range(25, 31)]
    assert "<strong>30</strong> products" in second.content.decode()


def test_page_out_of_range_shows_the_last_page(client, thirty_products):
    response = client.get(LIST_URL, {"page": "99"})

    assert response.status_code == 200
    assert _names(response) == [f"Item {n:02d}" for n in range(25, 31)]
    assert '<span aria-current="page">2</span>' in response.content.decode()


def test_page_that_is_not_a_number_shows_the_first_page(client, thirty_products):
    response = client.get(LIST_URL, {"page": "abc"})

    assert _names(response) == [f"Item {n:02d}" for n in range(1, 25)]


def test_pagination_links_keep_the_filters_and_work_with_htmx(client, thirty_products):
    content = client.get(LIST_URL, {"q": "item", "sort": "newest", "min_price": ""}).content
    content = content.decode()

    assert 'href="?q=item&amp;sort=newest&amp;page=2"' in content
    assert 'hx-get="?q=item&amp;sort=newest&amp;page=2"' in content
    assert 'hx-target="#product-results"' in content
    assert 'hx-push-url="true"' in content


def test_single_page_has_no_pagination(client):
    _product("Only")

    assert 'class="pagination"' not in client.get(LIST_URL).content.decode()


# --- htmx -----------------------------------------------------------------


def test_htmx_request_gets_only_the_results_fragment_and_a_tidy_url(client):
    _product("Blue Lamp", days_ago=1)
    _product("Red Lamp", days_ago=2)

    response = client.get(
        LIST_URL, {"q": "blue", "category": "", "sort": "newest"}, headers=HTMX_HEADERS
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in content
    assert 'id="product-results"' in content
    assert 'id="product-filters"' not in content
    assert _names(response) == ["Blue Lamp"]
    assert response.headers["HX-Push-Url"] == "/products/?q=blue&sort=newest"
    assert "HX-Request" in response.headers["Vary"]


def test_htmx_fragment_carries_filter_problems(client):
    _product("Lamp")

    response = client.get(LIST_URL, {"min_price": "cheap"}, headers=HTMX_HEADERS)

    assert "Minimum price must be a number." in response.content.decode()


def test_htmx_push_url_names_the_page_shown(client, thirty_products):
    response = client.get(LIST_URL, {"page": "7"}, headers=HTMX_HEADERS)

    assert response.headers["HX-Push-Url"] == "/products/?page=2"


def test_normal_request_gets_the_full_page_with_the_filter_form(client):
    _product("Blue Lamp")

    response = client.get(LIST_URL, {"q": "blue"})

    content = response.content.decode()
    assert "<html" in content
    assert 'id="product-results"' in content
    assert '<form id="product-filters"' in content
    assert 'method="get" action="/products/"' in content
    assert 'hx-get="/products/" hx-target="#product-results"' in content
    for label in ("Search", "Category", "Shop", "Min", "Max", "In stock only", "Sort by"):
        assert re.search(rf"<label[^>]*>\s*(<input[^>]*>\s*)?{label}\s*</label>", content), label
    assert "HX-Push-Url" not in response.headers


def test_htmx_request_aimed_elsewhere_gets_the_full_page(client):
    _product("Blue Lamp")

    response = client.get(LIST_URL, headers={"HX-Request": "true", "HX-Target": "main"})

    assert "<html" in response.content.decode()


def test_category_page_serves_its_fragment_too(client):
    kitchen = factories.CategoryFactory(name="Kitchen", slug="kitchen")
    _product("Pan", category=kitchen)

    response = client.get(kitchen.get_absolute_url(), {"q": "pan"}, headers=HTMX_HEADERS)

    content = response.content.decode()
    assert "<html" not in content
    assert _names(response) == ["Pan"]
    assert response.headers["HX-Push-Url"] == "/c/kitchen/?q=pan"
    assert "<title>Results for “pan” in Kitchen · Bazaar</title>" in content


def test_htmx_search_fragment_updates_heading_title_and_header_search_box(client):
    _product("Blue Lamp")

    response = client.get(LIST_URL, {"q": "lamp"}, headers=HTMX_HEADERS)

    content = response.content.decode()
    assert "<title>Results for “lamp” · Bazaar</title>" in content
    assert '<h1 id="listing-heading" hx-swap-oob="true">Results for “lamp”</h1>' in content
    header_box = re.search(r'<input id="header-search-q"[^>]*>', content).group(0)
    assert 'value="lamp"' in header_box
    assert 'hx-swap-oob="true"' in header_box
    # A price problem shown earlier is cleared.
    assert re.search(
        r'<div id="filter-price-problems"[^>]*hx-swap-oob="innerHTML">\s*</div>', content
    )
    assert _names(response) == ["Blue Lamp"]


def test_full_page_sends_nothing_out_of_band(client):
    _product("Blue Lamp")

    content = client.get(LIST_URL, {"q": "lamp"}).content.decode()

    assert "hx-swap-oob" not in content
    assert content.count("<title>") == 1
    assert '<h1 id="listing-heading">Results for “lamp”</h1>' in content
    assert re.search(r'<input id="header-search-q"[^>]*value="lamp"', content)


def test_htmx_minimum_above_maximum_shows_the_message_and_leaves_the_results(client):
    _product("Cheap", price=Decimal("4.00"))

    response = client.get(
        LIST_URL, {"q": "cheap", "min_price": "50", "max_price": "10"}, headers=HTMX_HEADERS
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert response.headers["HX-Reswap"] == "none"
    assert response.headers["HX-Push-Url"] == "false"
    assert re.search(
        r'<div id="filter-price-problems" class="price-problems" role="alert" '
        r'hx-swap-oob="innerHTML">\s*'
        r"<p>Minimum price cannot be more than the maximum price.</p>\s*</div>",
        content,
    )
    # Nothing else: the grid, the heading and the title on screen stay as they are.
    assert 'id="product-results"' not in content
    assert "<title>" not in content
    assert "listing-heading" not in content


def test_minimum_above_maximum_is_shown_beside_the_price_fields_with_the_filters_open(client):
    _product("Cheap", price=Decimal("4.00"))

    content = client.get(LIST_URL, {"min_price": "50", "max_price": "10"}).content.decode()

    assert '<details class="filters-panel" open>' in content
    fieldset = re.search(r"<fieldset>.*?</fieldset>", content, re.S).group(0)
    assert "<p>Minimum price cannot be more than the maximum price.</p>" in fieldset
    assert 'aria-describedby="filter-price-problems"' in fieldset
    assert "Some filters could not be applied" not in content


def test_filters_are_folded_when_nothing_needs_fixing(client):
    _product("Cheap")

    content = client.get(LIST_URL, {"q": "cheap"}).content.decode()

    assert '<details class="filters-panel">' in content
    assert '<summary class="filters-toggle">Filters</summary>' in content
