"""Catalogue reads: only active products of approved vendors are ever visible to shoppers.

Search (docs/search.md): on PostgreSQL full-text search over each product's stored search
document (name weighted above description), web-search syntax, results by relevance, and a
misspelt word corrected against the vocabulary of product names; on SQLite (the embedded
default) every word is looked for with icontains.
"""

from decimal import Decimal
from functools import cached_property
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchRank, TrigramSimilarity
from django.db import connection, connections
from django.db.models import F, Func, IntegerField, Q, QuerySet, Value
from django.shortcuts import get_object_or_404

from project import listings
from shop.models import Category, Product, SearchWord, Vendor, VendorStatus

# What a product card needs; the product page loads the full row.
CARD_FIELDS = (
    "id",
    "name",
    "slug",
    "price",
    "stock",
    "image",
    "image_width",
    "image_height",
    "thumbnails_for",
    "created_at",
    "vendor__id",
    "vendor__name",
    "vendor__slug",
    "category__id",
    "category__name",
    "category__slug",
)

RELEVANCE = "relevance"
SORT_ORDERS: dict[str, tuple[str, ...]] = {
    RELEVANCE: ("-rank", "-created_at", "-id"),
    "newest": ("-created_at", "-id"),
    "price_asc": ("price", "-created_at", "-id"),
    "price_desc": ("-price", "-created_at", "-id"),
}
DEFAULT_SORT = "newest"
# The text search configuration of the search documents (migration 0007's trigger).
SEARCH_CONFIG = "english"
# The most matches of one search that are ranked and listed (see SearchMatches).
MATCH_LIMIT = 1_000


def _visible() -> QuerySet[Product]:
    return Product.objects.filter(is_active=True, vendor__status=VendorStatus.APPROVED)


def list_visible_products() -> QuerySet[Product]:
    """Products a shopper may see, shaped for product cards, newest first."""
    return (
        _visible()
        .select_related("vendor", "category")
        .only(*CARD_FIELDS)
        .order_by(*SORT_ORDERS[DEFAULT_SORT])
    )


def search_products(
    *,
    query: str = "",
    category: Category | None = None,
    vendor: Vendor | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    in_stock: bool = False,
    sort: str = "",
) -> "QuerySet[Product] | SearchMatches":
    """Visible products matching `query` and each filter; by relevance when searching and no
    other order is asked for, else by `sort` (newest first by default). A full-text search
    gives its first MATCH_LIMIT + 1 matches (SearchMatches); anything else a query set."""
    products = list_visible_products()
    query = query.strip()
    ranked = bool(query) and uses_full_text_search()
    if query:
        products = _matching(products, query) if ranked else _containing(products, query)
    if category is not None:
        products = products.filter(category=category)
    if vendor is not None:
        products = products.filter(vendor=vendor)
    if min_price is not None:
        products = products.filter(price__gte=min_price)
    if max_price is not None:
        products = products.filter(price__lte=max_price)
    if in_stock:
        products = products.filter(stock__gt=0)
    sort = _sort_order(sort, ranked=ranked)
    if ranked:
        return SearchMatches(products, query, sort)
    return products.order_by(*SORT_ORDERS[sort])


def _sort_order(sort: str, *, ranked: bool) -> str:
    if sort not in SORT_ORDERS or (sort == RELEVANCE and not ranked):
        return RELEVANCE if ranked and not sort else DEFAULT_SORT
    return sort


def paginate_products(*, per_page: int, **filters: Any) -> listings.CappedPaginator:
    """`search_products(**filters)` in pages of `per_page`, counted at most to the listing's
    cap: a search's MATCH_LIMIT best matches, otherwise COUNT_LIMIT products."""
    limit = MATCH_LIMIT if filters.get("query", "").strip() else None
    return listings.CappedPaginator(
        search_products(**filters),
        per_page,
        count_limit=limit,
        count_in_order=_counts_fastest_in_order(filters),
    )


def _counts_fastest_in_order(filters: dict[str, Any]) -> bool:
    """Whether the capped count is quickest read in the listing's own order: when an index
    gives that order (migration 0007), the count's scan stops after its 1,001 rows, where
    PostgreSQL's unordered plan first gathers every row of the filter into a bitmap
    (docs/search.md, "Counting and pages"). Without such an index an ordered count would sort
    every match, so it stays unordered."""
    if filters.get("query", "").strip() or any(
        filters.get(name) is not None for name in ("vendor", "min_price", "max_price")
    ):
        return False
    # product_visible_newest and product_active_price; product_category_newest by newest.
    sort = _sort_order(filters.get("sort", ""), ranked=False)
    return filters.get("category") is None or sort == DEFAULT_SORT


def uses_full_text_search() -> bool:
    """PostgreSQL searches its documents; the embedded SQLite database has none."""
    return connection.vendor == "postgresql"


def _search_query(query: str) -> SearchQuery:
    """`query` in web-search syntax: `red -shoes`, `"oak table"`, `lamp or candle`."""
    return SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG)


def _matching(products: QuerySet[Product], query: str) -> QuerySet[Product]:
    """The products whose search document matches (through the document's GIN index)."""
    return products.filter(search__document=_search_query(query))


STABLE_SCANS = "SET synchronize_seqscans = off"


class SearchMatches:
    """The first MATCH_LIMIT + 1 products a full-text search finds, in the order asked for: a
    sequence for the listing's paginator (its length is the capped count, a slice is a page).

    One statement reads the matches and hands back their ids already in that order (an array
    sorted by the rank, computed from the document the match itself read; the date; the
    price); a page's products are then fetched by id. A search ranks and counts in that one
    pass over the matches, where a ranked product query read each match's product and document
    again and its count made a third pass (docs/search.md, "Plans at a million products").
    PostgreSQL sorts the at most 1,001 matches inside the statement, so one row crosses to
    Python instead of 1,001 (their conversion and sorting cost more CPU than the sort does).
    """

    def __init__(self, matches: QuerySet[Product], query: str, sort: str) -> None:
        self._matches = matches
        self._query = query
        self._order = SORT_ORDERS[sort]

    @cached_property
    def _ids(self) -> list[int]:
        columns = [field.lstrip("-") for field in self._order]
        matches = (
            self._matches.order_by()
            .annotate(rank=SearchRank(F("search__document"), _search_query(self._query)))
            .values(*columns)[: MATCH_LIMIT + 1]
        )
        sql, params = matches.query.sql_with_params()
        quote = connections[matches.db].ops.quote_name
        order = ", ".join(
            f"{quote(field.lstrip('-'))}{' DESC' if field.startswith('-') else ''}"
            for field in self._order
        )
        # What aggregate(ArrayAgg(...)) over the slice would send, for a third of its CPU: the
        # order applies to those matches only.
        statement = f"SELECT array_agg(id ORDER BY {order}) FROM ({sql}) AS matches"  # noqa: S608
        with connections[matches.db].cursor() as cursor:
            # Every scan of this statement starts at its table's first page. A broad search
            # (more matches than the limit) reads them with a sequential scan and takes the
            # first 1,001; with synchronised scans, PostgreSQL's default, each scan of a big
            # table begins where the last one stopped, so the matches, and page 2, changed
            # from one request to the next. One message (client-side binding), so an implicit
            # transaction: the setting never outlives it, even if the SELECT fails.
            # nosemgrep: bazaar-raw-sql-formatting — the ORM's SQL, quoted names; values bound
            cursor.execute(f"{STABLE_SCANS}; {statement}; RESET synchronize_seqscans", params)
            cursor.nextset()  # past the SET, to the SELECT's row
            (ids,) = cursor.fetchone()
        return ids or []

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: slice) -> list[Product]:
        ids = self._ids[index]
        # A product hidden since the first query drops out of the page.
        found = list_visible_products().in_bulk(ids)
        return [found[pk] for pk in ids if pk in found]


def _containing(products: QuerySet[Product], query: str) -> QuerySet[Product]:
    """SQLite: every word in the name or description, a word with a leading minus in neither."""
    for token in query.split():
        word = token.strip('"')
        if word.startswith("-") and len(word) > 1:
            word = word[1:]
            products = products.exclude(Q(name__icontains=word) | Q(description__icontains=word))
        elif word:
            products = products.filter(Q(name__icontains=word) | Q(description__icontains=word))
    return products


def correct_spelling(*, query: str) -> str | None:
    """`query` with each word that no product name contains replaced by the nearest word that
    one does (fewest edits, then most trigrams shared), or None when nothing changes.

    PostgreSQL only: one query per word, over the vocabulary of product names.
    """
    if not uses_full_text_search():
        return None
    tokens = query.split()
    changed = False
    for index, token in enumerate(tokens):
        word = token.strip('"').lstrip("-").lower()
        if len(word) < MIN_CORRECTED_LENGTH or not word.isalpha():
            continue
        nearest = _nearest_word(word)
        if nearest is not None and nearest != word:
            tokens[index] = token.lower().replace(word, nearest)
            changed = True
    return " ".join(tokens) if changed else None


# Words shorter than this are left alone (too many words are one edit away); a word of up to
# SHORT_WORD letters may be one edit from the one meant, a longer one two (a swap of two
# letters, "chiar" for "chair", is two).
MIN_CORRECTED_LENGTH = 3
SHORT_WORD = 4


def _nearest_word(word: str) -> str | None:
    max_edits = 1 if len(word) <= SHORT_WORD else 2
    # levenshtein_less_equal stops counting past max_edits: cheap on a long vocabulary.
    edits = Func(
        F("word"),
        Value(word),
        Value(max_edits),
        function="levenshtein_less_equal",
        output_field=IntegerField(),
    )
    return (
        SearchWord.objects.annotate(edits=edits, similarity=TrigramSimilarity("word", word))
        .filter(edits__lte=max_edits)
        .order_by("edits", "-similarity", "word")
        .values_list("word", flat=True)
        .first()
    )


def list_new_products(*, limit: int) -> list[Product]:
    """The most recently added visible products."""
    return list(list_visible_products()[:limit])


def list_featured_products(*, limit: int) -> list[Product]:
    """A stable pick for the home page: the best-stocked products that are in stock.

    Deterministic (ties broken by newest, then id), so the home page does not shuffle
    between requests and stays one query whatever the catalogue's size.
    """
    return list(
        list_visible_products().filter(stock__gt=0).order_by("-stock", "-created_at", "-id")[:limit]
    )


def list_categories() -> QuerySet[Category]:
    """All categories, by name."""
    return Category.objects.order_by("name")


def list_vendors() -> QuerySet[Vendor]:
    """Approved vendors, by name, for the listing's shop filter (their slug and name)."""
    return (
        Vendor.objects.filter(status=VendorStatus.APPROVED)
        .only("id", "name", "slug")
        .order_by("name")
    )


def get_category(*, slug: str) -> Category:
    """One category by slug, or 404."""
    return get_object_or_404(Category, slug=slug)


def get_visible_product(*, slug: str) -> Product:
    """One visible product with its vendor and category, or 404."""
    return get_object_or_404(_visible().select_related("vendor", "category"), slug=slug)
