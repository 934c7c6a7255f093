"""Content-Security-Policy violation reports: the endpoint named by the CSP's report-uri and
report-to (Reporting-Endpoints). Each violation becomes one JSON log line on `bazaar.csp`.

Browsers send either `application/csp-report` (report-uri: one {"csp-report": {...}}) or
`application/reports+json` (report-to: a list of reports, the CSP ones typed
"csp-violation"). Anyone can post here, so the body is size-capped, posts are rate-limited
per client address, and only the known fields are kept, each shortened.
"""

import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from project import client_ip, ratelimit

logger = logging.getLogger("bazaar.csp")

CONTENT_TYPES = ("application/csp-report", "application/reports+json")
MAX_REPORTS_PER_POST = 20
MAX_FIELD_LENGTH = 500

# Our field name: (report-uri's key, report-to's key)
_FIELDS = {
    "document": ("document-uri", "documentURL"),
    "directive": ("effective-directive", "effectiveDirective"),
    "violated": ("violated-directive", None),
    "blocked": ("blocked-uri", "blockedURL"),
    "source": ("source-file", "sourceFile"),
    "line": ("line-number", "lineNumber"),
    "column": ("column-number", "columnNumber"),
    "disposition": ("disposition", "disposition"),
    "sample": ("script-sample", "sample"),
    "status": ("status-code", "statusCode"),
}


class BadReport(ValueError):
    pass


def _violation(raw: dict, *, legacy: bool) -> dict:
    violation: dict[str, str | int | float] = {}
    for name, keys in _FIELDS.items():
        key = keys[0] if legacy else keys[1]
        value = raw.get(key) if key else None
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            violation[name] = value
        elif isinstance(value, str):
            violation[name] = value[:MAX_FIELD_LENGTH]
    return violation


def parse_reports(content_type: str, body: bytes) -> list[dict]:
    """The violations in a report body, or BadReport."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadReport("The body is not JSON.") from None
    if content_type == "application/csp-report":
        if not isinstance(data, dict) or not isinstance(data.get("csp-report"), dict):
            raise BadReport('Expected {"csp-report": {...}}.')
        return [_violation(data["csp-report"], legacy=True)]
    if not isinstance(data, list):
        raise BadReport("Expected a list of reports.")
    violations = [
        _violation(report["body"], legacy=False)
        for report in data[:MAX_REPORTS_PER_POST]
        if isinstance(report, dict)
        and report.get("type") == "csp-violation"
        and isinstance(report.get("body"), dict)
    ]
    if not violations:
        raise BadReport("No csp-violation report in the body.")
    return violations


# nosemgrep: bazaar-csrf-exempt — browsers send reports without a token; it only logs them
@csrf_exempt
@require_POST
def report(request: HttpRequest) -> HttpResponse:
    try:
        ratelimit.hit("csp_report_address", client_ip.client_ip(request))
    except ratelimit.RateLimited as exc:
        return ratelimit.too_many_requests(request, exc)
    content_type = request.content_type or ""
    if content_type not in CONTENT_TYPES:
        return HttpResponse(
            "Send application/csp-report or application/reports+json.\n",
            status=415,
            content_type="text/plain",
        )
    cap = settings.CSP_REPORT_MAX_BYTES
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    body = b"" if declared > cap else request.read(cap + 1)
    if declared > cap or len(body) > cap:
        return HttpResponse(
            f"A report may be at most {cap} bytes.\n", status=413, content_type="text/plain"
        )
    try:
        violations = parse_reports(content_type, body)
    except BadReport as exc:
        return HttpResponse(f"{exc}\n", status=400, content_type="text/plain")
    for violation in violations:
        logger.warning(
            "CSP violation: %s blocked %s",
            violation.get("directive") or violation.get("violated", "?"),
            violation.get("blocked", "?"),
            extra={"csp": violation},
        )
    return HttpResponse(status=204)
