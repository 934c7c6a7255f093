"""The shopper's catalogue: home, listing (search, filters, sort), categories, product page."""

from django.core.paginator import Page
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_safe
from django_htmx.http import push_url, reswap

from project import listings, page_cache
from project.http import HtmxRequest
from shop.forms.catalogue import ProductFilterForm
from shop.models import Category
from shop.selectors import catalogue as catalogue_selectors

PAGE_SIZE = 24
HOME_GRID_SIZE = 8
LISTING_TEMPLATE = "shop/catalogue/product_list.html"
RESULTS_FRAGMENT = "product-results"
PRICE_PROBLEMS = "filter-price-problems"


@require_safe
@page_cache.cache_catalogue_page()
def home(request: HttpRequest) -> HttpResponse:
    context = {
        "categories": catalogue_selectors.list_categories(),
        "featured_products": catalogue_selectors.list_featured_products(limit=HOME_GRID_SIZE),
        "new_products": catalogue_selectors.list_new_products(limit=HOME_GRID_SIZE),
    }
    return render(request, "shop/catalogue/home.html", context)


@require_safe
@page_cache.cache_catalogue_page()
def product_list(request: HtmxRequest) -> HttpResponse:
    categories = list(catalogue_selectors.list_categories())
    return _listing(request, categories=categories, category=None)


@require_safe
@page_cache.cache_catalogue_page()
def category_detail(request: HtmxRequest, slug: str) -> HttpResponse:
    categories = list(catalogue_selectors.list_categories())
    category = next((c for c in categories if c.slug == slug), None)
    if category is None:
        raise Http404("No such category.")
    return _listing(request, categories=categories, category=category)


@require_safe
@page_cache.cache_catalogue_page(
    lambda request, slug: (page_cache.CATALOGUE, page_cache.product_scope(slug))
)
def product_detail(request: HttpRequest, slug: str) -> HttpResponse:
    product = catalogue_selectors.get_visible_product(slug=slug)
    return render(request, "shop/catalogue/product_detail.html", {"product": product})


def _listing(
    request: HtmxRequest, *, categories: list[Category], category: Category | None
) -> HttpResponse:
    """One listing for search results and category pages; htmx gets only the results grid.

    The grid's fragment also brings, out of band, what else on the page names the search:
    the heading, the document's title, the header's search box and the price problems.
    """
    vendors = list(catalogue_selectors.list_vendors())
    form = ProductFilterForm(
        request.GET, categories=categories, vendors=vendors, auto_id="filter-%s"
    )
    filters = form.filters()
    swap_oob = bool(request.htmx and request.htmx.target == RESULTS_FRAGMENT)
    price_problems = form.price_problems()
    if swap_oob and price_problems:
        # The results on screen stay as they are until the price range makes sense.
        context = {"price_problems": price_problems, "swap_oob": True}
        response = render(request, f"{LISTING_TEMPLATE}#{PRICE_PROBLEMS}", context)
        push_url(reswap(response, "none"), False)
        patch_vary_headers(response, ("HX-Request", "HX-Target"))
        return response
    if category is not None:
        filters["category"] = category
    page_obj = _results_page(request, filters)
    misspelt = ""
    if filters["query"] and not page_obj.paginator.count:
        spelling = catalogue_selectors.correct_spelling(query=filters["query"])
        if spelling:
            misspelt, filters["query"] = filters["query"], spelling
            page_obj = _results_page(request, filters)

    listing_url = category.get_absolute_url() if category else reverse("shop:product_list")
    params = listings.link_params(request.GET, drop=("category",) if category else ())
    context = {
        "form": form,
        "problems": form.problems(),
        "price_problems": price_problems,
        "swap_oob": swap_oob,
        "filters": filters,
        "misspelt": misspelt,
        "category": category,
        "categories": categories,
        "page_obj": page_obj,
        "params": params,
        "listing_url": listing_url,
        "heading": _heading(category=category, query=filters["query"]),
    }
    return listings.render_listing(
        request,
        template=LISTING_TEMPLATE,
        fragment=RESULTS_FRAGMENT,
        context=context,
        listing_url=listing_url,
        params=params,
        page_obj=page_obj,
    )


def _results_page(request: HtmxRequest, filters: dict) -> Page:
    paginator = catalogue_selectors.paginate_products(per_page=PAGE_SIZE, **filters)
    return paginator.get_page(request.GET.get("page"))


def _heading(*, category: Category | None, query: str) -> str:
    if category is not None and query:
        return f"Results for “{query}” in {category.name}"
    if category is not None:
        return category.name
    if query:
        return f"Results for “{query}”"
    return "All products"
