"""Stripe webhooks: verified by signature, each event applied at most once.

Stripe signs each delivery (`Stripe-Signature: t=...,v1=HMAC-SHA256(secret, "t.body")`);
`stripe.Webhook.construct_event` checks it and refuses a timestamp older than five minutes.
A replay inside that window, and Stripe's own redeliveries of an event (up to three days),
are recognised by the event id, remembered in the cache for a week. The handlers are
idempotent on their own as well (they only move payments and refunds forward), so a cache
that forgot an id changes nothing.
"""

import logging
from decimal import Decimal

import stripe
from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from shop.gateways import ChargeResult
from shop.models import Payment
from shop.services import payments as payment_services
from shop.services import refunds as refund_services

logger = logging.getLogger(__name__)

SEEN_EVENT_SECONDS = 7 * 24 * 3600


# nosemgrep: bazaar-csrf-exempt — Stripe calls it without a session; its signature is checked
@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise Http404("Stripe webhooks are not configured.")
    try:
        event = stripe.Webhook.construct_event(
            request.body, request.headers.get("Stripe-Signature", ""), secret
        ).to_dict()
    except (ValueError, stripe.SignatureVerificationError):
        return HttpResponseBadRequest("Invalid payload or signature.")
    seen_key = f"stripe-event:{event.get('id')}"
    if not cache.add(seen_key, "1", timeout=SEEN_EVENT_SECONDS):
        return HttpResponse("Already processed.")
    try:
        handle_event(event)
    except BaseException:
        cache.delete(seen_key)  # let Stripe's redelivery try again
        raise
    return HttpResponse("OK")


def handle_event(event: dict) -> None:
    """Apply one verified event to our payments and refunds; unknown types are ignored."""
    kind = event.get("type", "")
    obj = (event.get("data") or {}).get("object") or {}
    if kind == "payment_intent.succeeded":
        payment = _payment_for(obj.get("id", ""), obj.get("metadata") or {})
        if payment is not None:
            result = ChargeResult(status="captured", reference=obj["id"])
            payment_services.record_charge_result(payment=payment, result=result)
    elif kind == "payment_intent.payment_failed":
        payment = _payment_for(obj.get("id", ""), obj.get("metadata") or {})
        if payment is not None:
            error = obj.get("last_payment_error") or {}
            result = ChargeResult(
                status="declined",
                reference=obj["id"],
                failure_code=error.get("decline_code") or error.get("code") or "card_declined",
                failure_message=error.get("message") or "Your card was declined.",
            )
            payment_services.record_charge_result(payment=payment, result=result)
    elif kind == "charge.refunded":
        payment = _payment_for(obj.get("payment_intent") or "", obj.get("metadata") or {})
        if payment is not None:
            refund_services.record_external_refund(
                payment=payment,
                refunded_total=Decimal(obj.get("amount_refunded", 0)) / 100,
                reference=obj.get("id", ""),
            )
    else:
        logger.info("Ignoring Stripe event of type %s", kind)


def _payment_for(intent_id: str, metadata: dict) -> Payment | None:
    key = metadata.get("bazaar_idempotency_key")
    payment = None
    if key:
        payment = Payment.objects.filter(idempotency_key=key).first()
    if payment is None and intent_id:
        payment = Payment.objects.filter(gateway_reference=intent_id).first()
    if payment is None:
        logger.warning("Stripe event for an unknown payment intent %s", intent_id)
    return payment
