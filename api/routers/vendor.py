"""The vendor area: a shop's products and stock, its part of orders (ship, cancel a line) and
its sales reports, for its own systems (docs/api-vendor.md).

Every call acts for the caller's vendor only (`auth.vendor`) and runs in that vendor's
row-level-security scope (`scoping.in_vendor_scope`): another shop's ids answer 404. Writes
need a read-write credential and a shop that is not suspended. A product's `version` is its
ETag: a change must name the version it was based on (`If-Match`, or `version` per stock
item), so a write based on a stale read is refused instead of overwriting what changed.
"""

import datetime
from collections.abc import Callable
from typing import Annotated, Any, Literal

from django.db.models import Model, QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Header, Query, Router, Status

from accounts.models import User
from api import auth, errors, idempotency, pagination, scoping
from api.errors import ApiError
from api.pagination import CursorPage
from api.schemas import vendor as schemas
from backoffice.forms import reports as report_forms
from backoffice.selectors import orders as order_selectors
from backoffice.selectors import products as product_selectors
from backoffice.selectors import reports as report_selectors
from backoffice.services import products as product_services
from project import files
from shop.models import Category, Order, Product, ReportJob, ReportStatus, Vendor
from shop.services import fulfilment
from shop.services import reports as report_services
from shop.services import stock as stock_services

router = Router(tags=["vendor"])

API_STOCK_NOTE = "Set through the API"
Limit = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT)


def _etag(product: Product) -> str:
    return f'"{product.version}"'


def _expected_version(if_match: str | None) -> int:
    """The product version an `If-Match` header names: `"7"` (or W/"7", or 7)."""
    if if_match is None:
        raise ApiError(
            428,
            "Send If-Match with the product's ETag (its version), so a change based on a "
            "stale read is refused.",
            code="if-match-required",
        )
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise ApiError(
            400,
            'If-Match must be the product\'s ETag, e.g. "3".',
            code="bad-if-match",
            errors=[{"field": "If-Match", "message": "Not an ETag this API gave out."}],
        )
    return int(value)


def _category(slug: str) -> Category:
    category = product_selectors.find_category(slug=slug)
    if category is None:
        raise errors.invalid_input(
            [{"field": "category", "message": f"No category has the slug {slug!r}."}]
        )
    return category


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/")


def _page[M: Model](
    list_rows: Callable[..., QuerySet[M]], /, *, cursor: str | None, limit: int, **filters: Any
) -> dict[str, Any]:
    """One cursor page of what a vendor selector lists (call it inside the vendor's scope)."""
    items, next_cursor = pagination.keyset_page(list_rows(**filters), cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


# Products


@router.get(
    "/products",
    summary="List your products, newest first",
    response={200: CursorPage[schemas.ProductOut], **errors.problems(400, 401, 403, 422)},
    url_name="vendor_products",
)
async def list_products(
    request: HttpRequest,
    cursor: str | None = None,
    limit: int = Limit,
    active: bool | None = None,
    q: str = Query("", max_length=100, description="Words of the name or slug"),
    stock: Literal["in", "low", "out"] | None = None,
) -> dict[str, Any]:
    vendor = await auth.vendor(request)
    return await scoping.in_vendor_scope(
        vendor,
        _page,
        product_selectors.list_vendor_products,
        vendor=vendor,
        cursor=cursor,
        limit=limit,
        active=active,
        q=q,
        stock_state=stock or "",
    )


def _create_product(*, vendor: Vendor, acting_user: User, **fields: Any) -> Product:
    category = _category(fields.pop("category"))
    return product_services.create_product(
        vendor=vendor, acting_user=acting_user, category=category, **fields
    )


@router.post(
    "/products",
    summary="Create a product",
    response={201: schemas.ProductOut, **errors.problems(401, 403, 409, 422)},
)
@idempotency.idempotent
async def create_product(
    request: HttpRequest, payload: schemas.ProductCreate, response: HttpResponse
) -> Status[Product]:
    vendor = await auth.vendor(request, write=True)
    product = await scoping.in_vendor_scope(
        vendor,
        _create_product,
        vendor=vendor,
        acting_user=auth.principal(request).user,
        **payload.dict(),
    )
    response["Location"] = reverse("api:vendor_product", kwargs={"product_id": product.pk})
    response["ETag"] = _etag(product)
    return Status(201, product)


@router.get(
    "/products/{product_id}",
    summary="One of your products, with its ETag",
    url_name="vendor_product",
    response={200: schemas.ProductOut, **errors.problems(401, 403, 404, 422)},
)
async def get_product(request: HttpRequest, product_id: int, response: HttpResponse) -> Product:
    vendor = await auth.vendor(request)
    product = await scoping.in_vendor_scope(
        vendor, product_selectors.get_vendor_product, vendor=vendor, pk=product_id
    )
    response["ETag"] = _etag(product)
    return product


def _change_product(
    *, vendor: Vendor, acting_user: User, product_id: int, version: int, changes: dict[str, Any]
) -> Product:
    product = product_selectors.get_vendor_product(vendor=vendor, pk=product_id)
    category = _category(changes["category"]) if "category" in changes else product.category
    return product_services.update_product(
        vendor=vendor,
        product_id=product.pk,
        acting_user=acting_user,
        name=changes.get("name", product.name),
        category=category,
        price=changes.get("price", product.price),
        description=changes.get("description", product.description),
        is_active=changes.get("is_active", product.is_active),
        expected_version=version,
    )


@router.patch(
    "/products/{product_id}",
    summary="Change a product (If-Match: its ETag)",
    response={200: schemas.ProductOut, **errors.problems(400, 401, 403, 404, 409, 412, 422, 428)},
)
@idempotency.idempotent
async def change_product(
    request: HttpRequest,
    product_id: int,
    payload: schemas.ProductChange,
    response: HttpResponse,
    if_match: str | None = Header(None, alias="If-Match"),
) -> Product:
    vendor = await auth.vendor(request, write=True)
    version = _expected_version(if_match)
    try:
        product = await scoping.in_vendor_scope(
            vendor,
            _change_product,
            vendor=vendor,
            acting_user=auth.principal(request).user,
            product_id=product_id,
            version=version,
            changes=payload.dict(exclude_unset=True, exclude_none=True),
        )
    except product_services.ProductChangedMeanwhile as exc:
        raise ApiError(
            412,
            exc.message,
            code="stale-version",
            errors=[
                {"field": "If-Match", "message": f'The current ETag is "{exc.current_version}".'}
            ],
            headers={"ETag": f'"{exc.current_version}"'},
        ) from None
    response["ETag"] = _etag(product)
    return product


@router.post(
    "/stock",
    summary="Set the stock of several products, all or nothing",
    response={200: schemas.StockBatchOut, **errors.problems(401, 403, 412, 422)},
)
@idempotency.idempotent
async def set_stock(request: HttpRequest, payload: schemas.StockBatch) -> dict[str, Any]:
    vendor = await auth.vendor(request, write=True)
    levels = [stock_services.StockLevel(**item.dict()) for item in payload.items]
    try:
        products = await scoping.in_vendor_scope(
            vendor,
            stock_services.set_stock_levels,
            vendor=vendor,
            levels=levels,
            acting_user=auth.principal(request).user,
            note=payload.note.strip() or API_STOCK_NOTE,
        )
    except stock_services.StockBatchRefused as exc:
        raise ApiError(
            412 if exc.stale else 422,
            exc.message,
            code="stale-version" if exc.stale else "stock-refused",
            errors=[
                {"field": f"items.{problem.index}.{problem.field}", "message": problem.message}
                for problem in exc.problems
            ],
        ) from None
    return {"items": products}


# Orders


@router.get(
    "/orders",
    summary="Your part of orders, newest first",
    response={200: CursorPage[schemas.VendorOrderOut], **errors.problems(400, 401, 403, 422)},
    url_name="vendor_orders",
)
async def list_orders(
    request: HttpRequest,
    cursor: str | None = None,
    limit: int = Limit,
    state: Literal["to_ship", "shipped", "cancelled"] | None = None,
    date_from: Annotated[datetime.date | None, Query(description="Placed on or after")] = None,
    date_to: Annotated[datetime.date | None, Query(description="Placed on or before")] = None,
) -> dict[str, Any]:
    vendor = await auth.vendor(request)
    return await scoping.in_vendor_scope(
        vendor,
        _page,
        order_selectors.list_vendor_orders_with_lines,
        vendor=vendor,
        cursor=cursor,
        limit=limit,
        status=state,
        date_from=date_from,
        date_to=date_to,
    )


@router.get(
    "/orders/{order_id}",
    summary="Your part of one order, with its shipments",
    response={200: schemas.VendorOrderDetailOut, **errors.problems(401, 403, 404, 422)},
    url_name="vendor_order",
)
async def get_order(request: HttpRequest, order_id: int) -> Order:
    vendor = await auth.vendor(request)
    return await scoping.in_vendor_scope(
        vendor, order_selectors.access_vendor_order, vendor=vendor, pk=order_id
    )


def _ship(*, vendor: Vendor, order_id: int, **shipping: Any) -> Order:
    order = order_selectors.access_vendor_order(vendor=vendor, pk=order_id)
    fulfilment.ship_vendor_lines(order=order, vendor=vendor, **shipping)
    return order_selectors.access_vendor_order(vendor=vendor, pk=order_id)


@router.post(
    "/orders/{order_id}/ship",
    summary="Ship your pending lines (or the chosen ones) with a carrier",
    response={200: schemas.VendorOrderDetailOut, **errors.problems(401, 403, 404, 409, 422)},
)
@idempotency.idempotent
async def ship_order(request: HttpRequest, order_id: int, payload: schemas.ShipIn) -> Order:
    vendor = await auth.vendor(request, write=True)
    try:
        return await scoping.in_vendor_scope(
            vendor,
            _ship,
            vendor=vendor,
            order_id=order_id,
            acting_user=auth.principal(request).user,
            base_url=_base_url(request),
            **payload.dict(),
        )
    except fulfilment.LineNotFound as exc:
        raise errors.invalid_input(
            [{"field": "line_ids", "message": "Name only lines of your part of the order."}],
            detail=exc.message,
        ) from None


def _cancel_line(*, vendor: Vendor, order_id: int, line_id: int, **cancel: Any) -> Order:
    order = order_selectors.access_vendor_order(vendor=vendor, pk=order_id)
    line = order_selectors.access_vendor_line(order=order, line_pk=line_id)
    fulfilment.cancel_vendor_line(order=order, vendor=vendor, line_id=line.pk, **cancel)
    return order_selectors.access_vendor_order(vendor=vendor, pk=order_id)


@router.post(
    "/orders/{order_id}/lines/{line_id}/cancel",
    summary="Cancel one of your lines before it ships (stock back, refund requested)",
    response={200: schemas.VendorOrderDetailOut, **errors.problems(401, 403, 404, 409, 422)},
)
@idempotency.idempotent
async def cancel_line(
    request: HttpRequest, order_id: int, line_id: int, payload: schemas.CancelLineIn
) -> Order:
    vendor = await auth.vendor(request, write=True)
    return await scoping.in_vendor_scope(
        vendor,
        _cancel_line,
        vendor=vendor,
        order_id=order_id,
        line_id=line_id,
        acting_user=auth.principal(request).user,
        reason=payload.reason,
        base_url=_base_url(request),
    )


# Reports


@router.get(
    "/reports",
    summary="Your sales reports, newest first",
    response={200: CursorPage[schemas.ReportOut], **errors.problems(400, 401, 403, 422)},
)
async def list_reports(
    request: HttpRequest, cursor: str | None = None, limit: int = Limit
) -> dict[str, Any]:
    vendor = await auth.vendor(request)
    return await scoping.in_vendor_scope(
        vendor,
        _page,
        report_selectors.list_vendor_reports,
        vendor=vendor,
        cursor=cursor,
        limit=limit,
    )


@router.post(
    "/reports",
    summary="Request a sales report (made in the background)",
    response={202: schemas.ReportOut, **errors.problems(401, 403, 409, 422)},
)
@idempotency.idempotent
async def request_report(
    request: HttpRequest, payload: schemas.ReportIn, response: HttpResponse
) -> Status[ReportJob]:
    vendor = await auth.vendor(request, write=True)
    # The backoffice's own rules: not in the future, at most a year.
    form = report_forms.ReportForm(data={k: str(v) for k, v in payload.dict().items()})
    if not form.is_valid():
        raise errors.invalid_input(
            [
                {"field": field, "message": str(message)}
                for field, messages in form.errors.items()
                for message in messages
            ],
        )
    report = await scoping.in_vendor_scope(
        vendor,
        report_services.request_report,
        vendor=vendor,
        acting_user=auth.principal(request).user,
        **form.cleaned_data,
    )
    response["Location"] = reverse("api:vendor_report", kwargs={"report_id": report.pk})
    return Status(202, report)


@router.get(
    "/reports/{report_id}",
    summary="One of your reports: its status and progress",
    url_name="vendor_report",
    response={200: schemas.ReportOut, **errors.problems(401, 403, 404, 422)},
)
async def get_report(request: HttpRequest, report_id: int) -> ReportJob:
    vendor = await auth.vendor(request)
    return await scoping.in_vendor_scope(
        vendor, report_selectors.get_vendor_report, vendor=vendor, pk=report_id
    )


def _download(*, vendor: Vendor, report_id: int, acting_user: User) -> FileResponse:
    report = report_selectors.get_vendor_report(vendor=vendor, pk=report_id)
    if report.is_expired:
        raise ApiError(410, "This report has expired; request a new one.", code="report-expired")
    if not report.is_downloadable:
        status = "failed" if report.status == ReportStatus.FAILED else "not ready yet"
        raise ApiError(409, f"This report is {status}.", code="report-not-ready")
    report_services.record_download(report=report, acting_user=acting_user)
    return files.attachment(
        report.file, filename=report.download_name, content_type="text/csv; charset=utf-8"
    )


@router.get(
    "/reports/{report_id}/download",
    summary="Download a finished report (CSV)",
    response=errors.problems(401, 403, 404, 409, 410, 422),
    openapi_extra={
        "responses": {"200": {"description": "The report", "content": {"text/csv": {}}}}
    },
)
async def download_report(request: HttpRequest, report_id: int) -> FileResponse:
    vendor = await auth.vendor(request)
    return await scoping.in_vendor_scope(
        vendor,
        _download,
        vendor=vendor,
        report_id=report_id,
        acting_user=auth.principal(request).user,
    )
