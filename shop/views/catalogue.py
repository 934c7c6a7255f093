"""The shopper's catalogue: home, listing (search, filters, sort), categories, product page."""

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from shop.forms.catalogue import ProductFilterForm
from shop.models import Category
from shop.selectors import catalogue as catalogue_selectors

PAGE_SIZE = 24
HOME_GRID_SIZE = 8
LISTING_TEMPLATE = "shop/catalogue/product_list.html"
RESULTS_FRAGMENT = "product-results"


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    context = {
        "categories": catalogue_selectors.list_categories(),
        "featured_products": catalogue_selectors.list_featured_products(limit=HOME_GRID_SIZE),
        "new_products": catalogue_selectors.list_new_products(limit=HOME_GRID_SIZE),
    }
    return render(request, "shop/catalogue/home.html", context)


@require_GET
def product_list(request: HttpRequest) -> HttpResponse:
    categories = list(catalogue_selectors.list_categories())
    return _listing(request, categories=categories, category=None)


@require_GET
def category_detail(request: HttpRequest, slug: str) -> HttpResponse:
    categories = list(catalogue_selectors.list_categories())
    category = next((c for c in categories if c.slug == slug), None)
    if category is None:
        raise Http404("No such category.")
    return _listing(request, categories=categories, category=category)


@require_GET
def product_detail(request: HttpRequest, slug: str) -> HttpResponse:
    product = catalogue_selectors.get_visible_product(slug=slug)
    return render(request, "shop/catalogue/product_detail.html", {"product": product})


def _listing(
    request: HttpRequest, *, categories: list[Category], category: Category | None
) -> HttpResponse:
    """One listing for search results and category pages; htmx gets only the results grid."""
    vendors = list(catalogue_selectors.list_vendors())
    form = ProductFilterForm(
        request.GET, categories=categories, vendors=vendors, auto_id="filter-%s"
    )
    filters = form.filters()
    if category is not None:
        filters["category"] = category
    products = catalogue_selectors.search_products(**filters)
    page_obj = Paginator(products, PAGE_SIZE).get_page(request.GET.get("page"))

    listing_url = category.get_absolute_url() if category else reverse("shop:product_list")
    params = _link_params(request.GET, drop_category=category is not None)
    context = {
        "form": form,
        "problems": form.problems(),
        "filters": filters,
        "category": category,
        "categories": categories,
        "page_obj": page_obj,
        "params": params,
        "listing_url": listing_url,
        "heading": _heading(category=category, query=filters["query"]),
    }
    if request.htmx and request.htmx.target == RESULTS_FRAGMENT:
        response = render(request, f"{LISTING_TEMPLATE}#{RESULTS_FRAGMENT}", context)
        # The address bar shows the tidy URL of what is on screen, without empty fields.
        page_params = params.copy()
        if page_obj.number > 1:
            page_params["page"] = str(page_obj.number)
        query = page_params.urlencode()
        push_url(response, f"{listing_url}?{query}" if query else listing_url)
    else:
        response = render(request, LISTING_TEMPLATE, context)
    # The same URL answers with a page or a fragment; caches must keep them apart.
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


def _link_params(query: QueryDict, *, drop_category: bool) -> QueryDict:
    """The listing's GET parameters worth keeping in links: non-empty, without the page."""
    params = QueryDict(mutable=True)
    for key, values in query.lists():
        if key == "page" or (drop_category and key == "category"):
            continue
        kept = [value for value in values if value.strip()]
        if kept:
            params.setlist(key, kept)
    return params


def _heading(*, category: Category | None, query: str) -> str:
    if category is not None:
        return category.name
    if query:
        return f"Results for “{query}”"
    return "All products"
