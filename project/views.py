from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from project.background import monitoring


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database and the cache answer."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        cache.set("readyz", "1", 5)
        checks["cache"] = "ok" if cache.get("readyz") == "1" else "error"
    except Exception as exc:  # noqa: BLE001
        checks["cache"] = f"error: {exc.__class__.__name__}"
    ready = all(value == "ok" for value in checks.values())
    # Reported, not failed on: a stalled worker queue must not take the web pods out of
    # service (the workers' own liveness probes restart them; /metrics alerts).
    task_queues = _task_queue_state() if ready else "unknown"
    status = "ok" if not ready or task_queues == "ok" else "degraded"
    return JsonResponse(
        {"status": status if ready else "unavailable", **checks, "task_queues": task_queues},
        status=200 if ready else 503,
    )


def _task_queue_state() -> str:
    try:
        stalled = [queue for queue, stats in monitoring.queue_stats().items() if stats["stalled"]]
    except Exception as exc:  # noqa: BLE001
        return f"error: {exc.__class__.__name__}"
    return f"stalled: {', '.join(sorted(stalled))}" if stalled else "ok"
