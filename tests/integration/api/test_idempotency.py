"""`Idempotency-Key` on writes, through a test-only API whose one write endpoint adjusts a
vendor's stock with the real stock service (the decorator as other areas use it)."""

import asyncio
import contextlib
import datetime
import json
import os
import signal
import threading
import urllib.request

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest
from django.test import Client
from django.urls import path
from django.utils import timezone
from ninja import Router, Schema, Status

from api import auth, errors, idempotency, scoping
from api.auth import Principal
from api.models import IdempotencyRecord
from api.openapi import BazaarApi
from shop.models import Product, StockAdjustment
from shop.services import stock
from tests import factories
from tests.fixtures.asgi_server import AsgiServer, wait_for
from tests.integration.api.conftest import bearer

router = Router()


class AdjustIn(Schema):
    change: int
    reason: str = "received"


class AdjustOut(Schema):
    adjustment_id: int
    stock: int


HANG_ENV = "BAZAAR_TEST_IDEMPOTENT_WRITE_HANGS"
# Set by a test to hold the endpoint inside its work until released (a slow first request).
HOLD: dict[str, threading.Event] = {}


@router.post(
    "/products/{product_id}/adjust",
    summary="Adjust stock (test)",
    response={201: AdjustOut, **errors.problems(401, 403, 409, 422)},
)
@idempotency.idempotent
async def adjust(request: HttpRequest, product_id: int, payload: AdjustIn) -> Status:
    vendor = await auth.vendor(request, write=True)
    if os.environ.get(HANG_ENV):  # the killed-server test's process: never answer
        await asyncio.sleep(3600)
    if "started" in HOLD:
        HOLD["started"].set()
        await sync_to_async(HOLD["release"].wait)(5)
    adjustment = await scoping.in_vendor_scope(
        vendor,
        stock.adjust_stock,
        product_id=product_id,
        vendor=vendor,
        change=payload.change,
        reason=payload.reason,
        acting_user=request.auth.user,
    )
    product = await Product.objects.aget(pk=product_id)
    return Status(201, {"adjustment_id": adjustment.pk, "stock": product.stock})


@router.post("/boom", summary="Fail (test)", response={201: AdjustOut})
@idempotency.idempotent
async def boom(request: HttpRequest) -> dict:
    raise RuntimeError("the server broke")


test_api = BazaarApi(
    urls_namespace="idempotency-test", auth=auth.bearer, docs_url=None, rate_limited=True
)
errors.install(test_api)
test_api.add_router("/", router)
urlpatterns = [path("test-api/", test_api.urls)]

pytestmark = pytest.mark.urls(__name__)


def _post(client, world, body, *, key="key-1", user=None, product=None):
    product = product or world.a.product
    return client.post(
        f"/test-api/products/{product.pk}/adjust",
        json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
        **bearer(user or world.a.member),
    )


def test_a_retry_with_the_same_key_replays_the_first_answer(api_world):
    client = Client()
    first = _post(client, api_world, {"change": 5})
    again = _post(client, api_world, {"change": 5})

    assert first.status_code == 201
    assert again.status_code == 201
    assert (
        again.json()
        == first.json()
        == {"adjustment_id": first.json()["adjustment_id"], "stock": 15}
    )
    assert again["Content-Type"] == first["Content-Type"]
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert int(again["RateLimit-Remaining"]) == int(first["RateLimit-Remaining"]) - 1
    assert StockAdjustment.objects.filter(product=api_world.a.product).count() == 1
    api_world.a.product.refresh_from_db()
    assert api_world.a.product.stock == 15


def test_another_key_does_the_work_again(api_world):
    client = Client()
    _post(client, api_world, {"change": 5}, key="key-1")
    second = _post(client, api_world, {"change": 5}, key="key-2")

    assert second.status_code == 201
    assert second.json()["stock"] == 20
    assert not second.has_header("Idempotent-Replayed")


def test_a_request_without_a_key_is_not_remembered(api_world):
    client = Client()
    response = client.post(
        f"/test-api/products/{api_world.a.product.pk}/adjust",
        json.dumps({"change": 1}),
        content_type="application/json",
        **bearer(api_world.a.member),
    )
    assert response.status_code == 201
    assert IdempotencyRecord.objects.count() == 0


def test_the_same_key_with_another_body_is_refused(api_world):
    client = Client()
    _post(client, api_world, {"change": 5})
    reused = _post(client, api_world, {"change": 7})

    assert reused.status_code == 422
    assert reused["Content-Type"] == "application/problem+json"
    body = reused.json()
    assert body["type"].endswith("/idempotency-key-reused")
    assert body["errors"] == [
        {"field": "Idempotency-Key", "message": "Already used with another request body."}
    ]
    api_world.a.product.refresh_from_db()
    assert api_world.a.product.stock == 15  # the first change only


def test_keys_are_per_caller(api_world):
    """Vendor B's member sending A's key is another request (and cannot see A's answer)."""
    client = Client()
    _post(client, api_world, {"change": 5})
    other = _post(
        client, api_world, {"change": 5}, user=api_world.b.member, product=api_world.b.product
    )
    assert other.status_code == 201
    assert other.json()["stock"] == 15
    assert not other.has_header("Idempotent-Replayed")
    assert IdempotencyRecord.objects.count() == 2


def test_keys_are_per_path(api_world):
    client = Client()
    other_product = factories.ProductFactory(vendor=api_world.a.vendor, stock=1)
    _post(client, api_world, {"change": 5})
    elsewhere = _post(client, api_world, {"change": 5}, product=other_product)
    assert elsewhere.status_code == 201
    assert elsewhere.json()["stock"] == 6


def test_a_client_error_is_stored_and_replayed(api_world):
    client = Client()
    first = _post(client, api_world, {"change": -50, "reason": "correction"})
    again = _post(client, api_world, {"change": -50, "reason": "correction"})

    assert first.status_code == again.status_code == 409
    assert again.json() == first.json()
    assert again.json()["type"].endswith("/negative-stock")
    assert again["Content-Type"] == "application/problem+json"
    assert again["Idempotent-Replayed"] == "true"
    assert StockAdjustment.objects.count() == 0


def test_a_server_error_is_not_stored_and_a_retry_works_again(api_world):
    client = Client(raise_request_exception=False)
    headers = {"HTTP_IDEMPOTENCY_KEY": "boom-1", **bearer(api_world.a.member)}
    first = client.post("/test-api/boom", "", content_type="application/json", **headers)
    assert first.status_code == 500
    assert IdempotencyRecord.objects.count() == 0  # the claim was released
    second = client.post("/test-api/boom", "", content_type="application/json", **headers)
    assert second.status_code == 500
    assert not second.has_header("Idempotent-Replayed")


def test_a_bad_key_is_refused_and_changes_nothing(api_world):
    response = _post(Client(), api_world, {"change": 5}, key="has spaces")
    assert response.status_code == 422
    assert response.json()["type"].endswith("/invalid-idempotency-key")
    assert IdempotencyRecord.objects.count() == 0
    assert StockAdjustment.objects.count() == 0


def _claim_row(world, body, *, age_seconds: float, key: str = "key-1") -> IdempotencyRecord:
    """The row a request with `key` left while it was (or still is) being processed."""
    path = f"/test-api/products/{world.a.product.pk}/adjust"
    record = IdempotencyRecord.objects.create(
        owner=f"user:{world.a.member.pk}",
        key=idempotency.scoped_key("POST", path, key),
        fingerprint=idempotency.fingerprint("", json.dumps(body).encode()),
    )
    claimed_at = timezone.now() - datetime.timedelta(seconds=age_seconds)
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=claimed_at)
    return record


def test_a_request_while_the_first_is_in_progress_gets_409(api_world):
    _claim_row(api_world, {"change": 5}, age_seconds=2)
    response = _post(Client(), api_world, {"change": 5})

    assert response.status_code == 409
    assert response.json()["type"].endswith("/idempotency-in-progress")
    assert response["Retry-After"] == "1"
    assert StockAdjustment.objects.count() == 0


def test_a_claim_left_by_a_dead_process_is_taken_over(api_world, settings):
    settings.API_IDEMPOTENCY_CLAIM_SECONDS = 60
    record = _claim_row(api_world, {"change": 5}, age_seconds=61)
    response = _post(Client(), api_world, {"change": 5})

    assert response.status_code == 201
    assert response.json()["stock"] == 15
    record.refresh_from_db()
    assert record.status_code == 201
    assert record.completed_at is not None
    assert StockAdjustment.objects.count() == 1


def test_a_record_past_its_time_no_longer_answers(api_world, settings):
    settings.API_IDEMPOTENCY_TTL_HOURS = 24
    client = Client()
    _post(client, api_world, {"change": 5})
    IdempotencyRecord.objects.update(created_at=timezone.now() - datetime.timedelta(hours=25))
    again = _post(client, api_world, {"change": 5})
    assert again.status_code == 201
    assert again.json()["stock"] == 20
    assert not again.has_header("Idempotent-Replayed")


def test_purge_deletes_records_older_than_a_day(api_world):
    client = Client()
    _post(client, api_world, {"change": 5}, key="old")
    _post(client, api_world, {"change": 5}, key="new")
    old = IdempotencyRecord.objects.order_by("pk").first()
    IdempotencyRecord.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - datetime.timedelta(hours=25)
    )

    assert idempotency.purge_expired_records(dry_run=True) == 1
    assert idempotency.purge_expired_records() == 1
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) != [old.pk]
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_do_the_work_once(api_world):
    """The first request holds its claim while it works; the second, arriving meanwhile, is
    told to retry; the retry after the first finished gets its answer."""
    HOLD.update(started=threading.Event(), release=threading.Event())
    answers = {}

    def first():
        try:
            answers["first"] = _post(Client(), api_world, {"change": 5})
        finally:
            connection.close()

    try:
        thread = threading.Thread(target=first)
        thread.start()
        assert HOLD["started"].wait(5)
        answers["second"] = _post(Client(), api_world, {"change": 5})
        HOLD["release"].set()
        thread.join(10)
    finally:
        HOLD.clear()
    retry = _post(Client(), api_world, {"change": 5})

    assert answers["first"].status_code == 201
    assert answers["second"].status_code == 409
    assert retry.status_code == 201
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == answers["first"].json()
    assert StockAdjustment.objects.count() == 1


def test_the_openapi_document_declares_the_header(api_world):
    schema = test_api.get_openapi_schema(path_prefix="/test-api/")
    parameters = schema["paths"]["/test-api/products/{product_id}/adjust"]["post"]["parameters"]
    assert {"in": "header", "name": "Idempotency-Key"}.items() <= next(
        p for p in parameters if p["name"] == "Idempotency-Key"
    ).items()


def test_principal_of_an_api_key_is_its_own_scope():
    from api.callers import caller_key

    class Req:
        auth = Principal(user=None, kind="api_key", credential_id="17")  # type: ignore[arg-type]

    assert caller_key(Req()) == "key:17"  # type: ignore[arg-type]


@pytest.mark.django_db(transaction=True)
def test_a_killed_server_leaves_a_claim_that_lapses_never_a_half_answer(
    api_world, tmp_path, settings
):
    server = AsgiServer(
        log=tmp_path / "uvicorn.log",
        env={
            "DJANGO_SETTINGS_MODULE": "tests.integration.api.idempotency_server_settings",
            HANG_ENV: "1",
        },
    ).start()
    request = urllib.request.Request(  # noqa: S310 - the test's own server
        f"{server.url}/test-api/products/{api_world.a.product.pk}/adjust",
        data=json.dumps({"change": 5}).encode(),
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": "key-1",
            "Authorization": bearer(api_world.a.member)["HTTP_AUTHORIZATION"],
        },
        method="POST",
    )
    sender = threading.Thread(target=_send_and_ignore, args=(request,), daemon=True)
    try:
        sender.start()
        wait_for(IdempotencyRecord.objects.exists, timeout=15)
        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGKILL)  # mid-request, claim taken
        server.process.wait(timeout=10)
    finally:
        server.stop()
    sender.join(10)

    [claim] = IdempotencyRecord.objects.all()
    assert (claim.completed_at, claim.status_code, claim.response_body) == (None, None, None)
    assert StockAdjustment.objects.count() == 0

    settings.API_IDEMPOTENCY_CLAIM_SECONDS = 60
    assert _post(Client(), api_world, {"change": 5}).status_code == 409  # still fresh
    IdempotencyRecord.objects.update(created_at=timezone.now() - datetime.timedelta(seconds=61))
    retry = _post(Client(), api_world, {"change": 5})

    assert retry.status_code == 201
    assert retry.json()["stock"] == 15
    assert not retry.has_header("Idempotent-Replayed")
    assert StockAdjustment.objects.count() == 1


def _send_and_ignore(request: urllib.request.Request) -> None:
    # The server is killed: no answer, as for a real client.
    with contextlib.suppress(OSError):
        urllib.request.urlopen(request, timeout=30)  # noqa: S310 - the test's own server


def test_only_async_endpoints_can_be_idempotent():
    def sync_endpoint(request):
        return {}

    with pytest.raises(TypeError, match="needs an `async def` endpoint; sync_endpoint"):
        idempotency.idempotent(sync_endpoint)
