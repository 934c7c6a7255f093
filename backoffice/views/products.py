"""The vendor's products: list (search, filters, sort, inline price/stock edit, bulk
activation), create, edit, CSV export and import. Only the vendor's own products."""

from collections.abc import Iterator

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from backoffice.decorators import vendor_member_required
from backoffice.forms import products as product_forms
from backoffice.selectors import products as product_selectors
from backoffice.services import imports as import_services
from backoffice.services import products as product_services
from project import csv as safe_csv
from project import listings
from project.errors import DomainError
from project.http import AuthenticatedRequest
from shop.models import Vendor

PAGE_SIZE = 25
LIST_TEMPLATE = "backoffice/products/list.html"
TABLE_FRAGMENT = "product-table"
ROW_FRAGMENT = "product-row"
FORM_TEMPLATE = "backoffice/products/form.html"
EXPORT_COLUMNS = ("slug", "name", "category", "price", "stock", "active", "description")


@require_safe
@vendor_member_required
def product_list(request: AuthenticatedRequest, *, vendor: Vendor) -> HttpResponse:
    categories = list(product_selectors.list_categories())
    form = product_forms.ProductFilterForm(request.GET, categories=categories, auto_id="filter-%s")
    filters = form.filters()
    products = product_selectors.list_vendor_products(vendor=vendor, **filters)
    page_obj = Paginator(products, PAGE_SIZE).get_page(request.GET.get("page"))
    params = listings.link_params(request.GET)
    context = {
        "vendor": vendor,
        "backoffice_section": "products",
        "form": form,
        "filters": filters,
        "page_obj": page_obj,
        "params": params,
        "next_url": request.get_full_path(),
        "bulk_form": product_forms.BulkActionForm(),
    }
    return listings.render_listing(
        request,
        template=LIST_TEMPLATE,
        fragment=TABLE_FRAGMENT,
        context=context,
        listing_url=reverse("backoffice:product_list"),
        params=params,
        page_obj=page_obj,
    )


@require_POST
@vendor_member_required
def product_inline_edit(request: AuthenticatedRequest, pk: int, *, vendor: Vendor) -> HttpResponse:
    product = product_selectors.get_vendor_product(vendor=vendor, pk=pk)
    form = product_forms.InlineEditForm(request.POST)
    error = None
    if form.is_valid():
        try:
            product = product_services.update_price_and_stock(
                vendor=vendor,
                product_id=product.pk,
                price=form.cleaned_data["price"],
                stock=form.cleaned_data["stock"],
                expected_stock=form.cleaned_data["stock_seen"],
                acting_user=request.user,
            )
        except DomainError as exc:
            error = exc.message
    else:
        error = form.first_error()
    next_url = _next_url(request)
    if request.htmx:
        context = {"product": product, "row_error": error, "row_saved": error is None}
        return render(request, f"{LIST_TEMPLATE}#{ROW_FRAGMENT}", {**context, "next_url": next_url})
    if error:
        messages.error(request, f"{product.name} was not changed: {error}")
    else:
        messages.success(request, f"{product.name}: price and stock saved.")
    return redirect(next_url)


@require_POST
@vendor_member_required
def product_bulk(request: AuthenticatedRequest, *, vendor: Vendor) -> HttpResponse:
    form = product_forms.BulkActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.first_error())
        return redirect(_next_url(request))
    active = form.cleaned_data["action"] == "activate"
    changed = product_services.set_products_active(
        vendor=vendor,
        product_ids=form.cleaned_data["products"],
        active=active,
        acting_user=request.user,
    )
    verb = "activated" if active else "deactivated"
    if changed:
        messages.success(request, f"{changed} product{'s' if changed != 1 else ''} {verb}.")
    else:
        messages.info(request, f"No products changed: the selected ones were already {verb}.")
    return redirect(_next_url(request))


@require_http_methods(["GET", "HEAD", "POST"])
@vendor_member_required
def product_create(request: AuthenticatedRequest, *, vendor: Vendor) -> HttpResponse:
    form = product_forms.ProductForm(*_bound(request))
    if request.method == "POST" and form.is_valid():
        try:
            product = product_services.create_product(
                vendor=vendor, acting_user=request.user, **form.cleaned_data
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"{product.name} was created.")
            return redirect("backoffice:product_list")
    context = {"vendor": vendor, "backoffice_section": "products", "form": form}
    return render(request, FORM_TEMPLATE, context)


@require_http_methods(["GET", "HEAD", "POST"])
@vendor_member_required
def product_edit(request: AuthenticatedRequest, pk: int, *, vendor: Vendor) -> HttpResponse:
    product = product_selectors.get_vendor_product(vendor=vendor, pk=pk)
    initial = {
        "name": product.name,
        "category": product.category,
        "price": product.price,
        "description": product.description,
        "is_active": product.is_active,
        "image": product.image,
    }
    form = product_forms.ProductForm(*_bound(request), initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            product = product_services.update_product(
                vendor=vendor, product_id=product.pk, acting_user=request.user, **form.cleaned_data
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"{product.name} was saved.")
            return redirect("backoffice:product_list")
    context = {
        "vendor": vendor,
        "backoffice_section": "products",
        "form": form,
        "product": product,
    }
    return render(request, FORM_TEMPLATE, context)


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


@require_safe
@vendor_member_required
def product_export(request: AuthenticatedRequest, *, vendor: Vendor) -> StreamingHttpResponse:
    categories = list(product_selectors.list_categories())
    form = product_forms.ProductFilterForm(request.GET, categories=categories)
    products = product_selectors.list_vendor_products(vendor=vendor, **form.filters())
    response = StreamingHttpResponse(_csv_lines(products), content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="{vendor.slug}-products-{stamp}.csv"'
    return response


def _csv_lines(products) -> Iterator[str]:
    writer = safe_csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for product in products.iterator(chunk_size=500):
        yield writer.writerow(
            (
                product.slug,
                product.name,
                product.category.slug,
                product.price,
                product.stock,
                "yes" if product.is_active else "no",
                product.description,
            )
        )


@require_http_methods(["GET", "HEAD", "POST"])
@vendor_member_required
def product_import(request: AuthenticatedRequest, *, vendor: Vendor) -> HttpResponse:
    form = product_forms.ProductImportForm(*_bound(request))
    row_errors: list[import_services.RowError] = []
    if request.method == "POST" and form.is_valid():
        try:
            summary = import_services.import_products(
                vendor=vendor, upload=form.cleaned_data["file"], acting_user=request.user
            )
        except import_services.ImportRejected as exc:
            form.add_error(None, exc.message)
            row_errors = exc.row_errors
        else:
            messages.success(
                request,
                f"Imported: {summary.created} created, {summary.updated} updated, "
                f"{summary.stock_changes} stock change{'s' if summary.stock_changes != 1 else ''}.",
            )
            return redirect("backoffice:product_list")
    context = {
        "vendor": vendor,
        "backoffice_section": "products",
        "form": form,
        "row_errors": row_errors,
        "columns": import_services.COLUMNS,
        "max_rows": import_services.MAX_ROWS,
    }
    return render(request, "backoffice/products/import.html", context)


def _next_url(request: HttpRequest) -> str:
    """Where a list action returns to: the list as it was (same filters and page)."""
    candidate = request.POST.get("next", "")
    if candidate.startswith(reverse("backoffice:product_list")) and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("backoffice:product_list")


def _bound(request: HttpRequest) -> tuple:
    """Form data and files for a POST (even an empty one), nothing for a GET."""
    if request.method == "POST":
        return request.POST, request.FILES
    return None, None
