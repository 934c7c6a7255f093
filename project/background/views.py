"""GET /metrics: Prometheus text format, for allowed addresses or a bearer token only."""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from project.background import monitoring


def _allowed(request: HttpRequest) -> bool:
    # REMOTE_ADDR, never X-Forwarded-For: a client can write any header it likes.
    if request.META.get("REMOTE_ADDR", "") in settings.METRICS_ALLOWED_IPS:
        return True
    token = settings.METRICS_TOKEN
    scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(supplied, token)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponseForbidden("Forbidden\n", content_type="text/plain")
    stats = monitoring.queue_stats()
    monitoring.check_queue_depths(stats)
    registry = monitoring.build_registry(stats)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
