"""Who a request's caller is, as one short string, for what is counted or kept per caller
(rate limits, idempotency keys)."""

from django.http import HttpRequest

from api.auth import Principal


def caller_key(request: HttpRequest) -> str | None:
    """An API key's id ("key:<id>"), or the person behind an access token ("user:<id>"; all
    of one person's tokens share it, so a token refresh changes nothing); None when anonymous."""
    who = getattr(request, "auth", None)
    if not isinstance(who, Principal):
        return None
    if who.kind == "api_key":
        return f"key:{who.credential_id}"
    return f"user:{who.user.pk}"
