"""A product's stock: adjust with a reason, and its history."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from backoffice.decorators import vendor_member_required
from backoffice.forms import stock as stock_forms
from backoffice.selectors import products as product_selectors
from project.errors import DomainError
from project.http import AuthenticatedRequest
from shop.models import Vendor
from shop.services import stock as stock_services

HISTORY_PAGE_SIZE = 25


@require_http_methods(["GET", "HEAD", "POST"])
@vendor_member_required
def stock_detail(request: AuthenticatedRequest, pk: int, *, vendor: Vendor) -> HttpResponse:
    product = product_selectors.get_vendor_product(vendor=vendor, pk=pk)
    form = stock_forms.StockAdjustForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            adjustment = stock_services.adjust_stock(
                product_id=product.pk, vendor=vendor, acting_user=request.user, **form.cleaned_data
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                f"Stock of {product.name} changed by {adjustment.change:+d} "
                f"to {adjustment.stock_after}.",
            )
            return redirect("backoffice:stock_detail", pk=product.pk)
    history = product_selectors.list_stock_adjustments(vendor=vendor, product=product)
    context = {
        "vendor": vendor,
        "backoffice_section": "products",
        "product": product,
        "form": form,
        "page_obj": Paginator(history, HISTORY_PAGE_SIZE).get_page(request.GET.get("page")),
    }
    return render(request, "backoffice/stock/detail.html", context)
