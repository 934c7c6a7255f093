"""GET /metrics: Prometheus text, for a bearer token (outside production also allowed addresses)."""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from project import metrics as project_metrics
from project.background import monitoring
from project.client_ip import client_ip


def _allowed(request: HttpRequest) -> bool:
    # In production only the token opens it: behind a proxy every request's peer is the proxy,
    # so an address allow-list would let the whole internet in. In development the allow-list
    # is checked against the client address (X-Forwarded-For only from TRUSTED_PROXIES).
    if not settings.PRODUCTION and client_ip(request) in settings.METRICS_ALLOWED_IPS:
        return True
    token = settings.METRICS_TOKEN
    scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(supplied, token)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponseForbidden("Forbidden\n", content_type="text/plain")
    stats = monitoring.queue_stats()
    monitoring.check_queue_depths(stats)
    registry = project_metrics.scrape_registry(stats)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
