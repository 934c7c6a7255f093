"""What Django itself does with the same data: the yardsticks the pages are measured against.

`product_names` renders 24 product names and prices from one query through a small template;
`write_row` is a CSRF-checked POST that writes one row in its own transaction. Neither runs
the project's context processors: they are what a page costs without the project's work.
"""

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.views.decorators.http import require_POST, require_safe

from shop.models import Product

PAGE_SIZE = 24
# The table write_row inserts into; bench/pages_bench.py creates it.
ROW_TABLE = "bench_reference_row"

PRODUCTS = engines["django"].from_string(
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>Products</title></head>"
    "<body><ul>{% for product in products %}"
    "<li>{{ product.name }}: {{ product.price }}</li>"
    "{% endfor %}</ul></body></html>"
)


@require_safe
def product_names(request: HttpRequest) -> HttpResponse:
    products = Product.objects.only("name", "price").order_by("-created_at", "-id")[:PAGE_SIZE]
    return HttpResponse(PRODUCTS.render({"products": products}))


@require_POST
def write_row(request: HttpRequest) -> HttpResponse:
    note = request.POST.get("note", "")[:100]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {ROW_TABLE} (note) VALUES (%s)", [note])  # noqa: S608
    return HttpResponse("<p>Saved.</p>")
