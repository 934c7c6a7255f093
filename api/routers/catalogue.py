"""The catalogue, for anyone (no token needed): products (search, category, pages), one
product, the categories. The same selectors as the shop's pages, so the API lists exactly
what a shopper sees in the browser: active products of approved vendors."""

from decimal import Decimal

from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest
from ninja import Field as QueryField
from ninja import Query, Router, Schema

from api.errors import invalid_input, problems
from api.schemas.shop import CategoryOut, ProductOut, ProductPage
from project import listings
from shop.models import Category, Product
from shop.selectors import catalogue as catalogue_selectors

router = Router(tags=["catalogue"])

PER_PAGE = 24
MAX_PER_PAGE = 100


class ProductFilters(Schema):
    q: str = QueryField("", max_length=200, description="Search words (web-search syntax).")
    category: str = QueryField("", max_length=90, description="A category's slug.")
    min_price: Decimal | None = QueryField(None, ge=0, max_digits=10, decimal_places=2)
    max_price: Decimal | None = QueryField(None, ge=0, max_digits=10, decimal_places=2)
    in_stock: bool = False
    sort: str = QueryField(
        "",
        pattern=r"^(|relevance|newest|price_asc|price_desc)$",
        description="Default: relevance when searching, else newest.",
    )
    page: int = QueryField(1, ge=1)
    per_page: int = QueryField(PER_PAGE, ge=1, le=MAX_PER_PAGE)


def _category(slug: str) -> Category | None:
    if not slug:
        return None
    try:
        return catalogue_selectors.get_category(slug=slug)
    except Http404:
        raise invalid_input(
            [{"field": "category", "message": "No category with this slug."}],
            detail="There is no such category.",
        ) from None


def _page(filters: ProductFilters, query: str) -> tuple[list[Product], listings.CappedPaginator]:
    """One page of matches, counted at most to the listing's cap (never the whole catalogue)."""
    paginator = catalogue_selectors.paginate_products(
        per_page=filters.per_page,
        query=query,
        category=_category(filters.category),
        min_price=filters.min_price,
        max_price=filters.max_price,
        in_stock=filters.in_stock,
        sort=filters.sort,
    )
    if filters.page > max(paginator.num_pages, 1):
        return [], paginator
    return list(paginator.page(filters.page).object_list), paginator


def _search(filters: ProductFilters) -> dict:
    items, paginator = _page(filters, filters.q)
    spelling = None
    if filters.q and not paginator.count:
        spelling = catalogue_selectors.correct_spelling(query=filters.q)
        if spelling:
            items, paginator = _page(filters, spelling)
    has_next = filters.page < paginator.num_pages
    return {
        "items": items,
        "page": filters.page,
        "per_page": filters.per_page,
        "count": paginator.count,
        "more_than_count": paginator.is_capped,
        "next_page": filters.page + 1 if has_next else None,
        "spelling": spelling,
    }


@router.get(
    "/products",
    auth=None,
    summary="Search and list products",
    response={200: ProductPage, **problems(422)},
)
async def list_products(request: HttpRequest, filters: Query[ProductFilters]) -> dict:
    """Active products of approved vendors; `q` searches as the shop's search box does
    (misspelt words corrected when nothing matched: `spelling` says to what). Pages are
    numbered; `count` stops at the listing's cap and `more_than_count` says there are more."""
    return await sync_to_async(_search)(filters)


def _product(ref: str) -> Product:
    if ref.isdigit():
        found = catalogue_selectors.list_visible_products().filter(pk=int(ref)).values("slug")
        slug = next((row["slug"] for row in found), None)
        if slug is not None:
            ref = slug
    return catalogue_selectors.get_visible_product(slug=ref)


@router.get(
    "/products/{ref}",
    auth=None,
    summary="One product, by id or slug",
    response={200: ProductOut, **problems(404)},
)
async def get_product(request: HttpRequest, ref: str) -> Product:
    """`ref` is the product's id or its slug. A product that is withdrawn, or whose vendor
    is not approved, is a 404 as one that never existed."""
    return await sync_to_async(_product)(ref)


@router.get(
    "/categories",
    auth=None,
    summary="All categories",
    response={200: list[CategoryOut]},
)
async def list_categories(request: HttpRequest) -> list[Category]:
    return await sync_to_async(lambda: list(catalogue_selectors.list_categories()))()
