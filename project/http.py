"""Request types for views: what the middleware and decorators guarantee, told to the type
checker. Django passes its own request objects; these classes are never instantiated.

- `HtmxRequest`: every request, since django_htmx's middleware sets `request.htmx`.
- `AuthenticatedRequest`: a view behind `login_required` (or a decorator built on it), whose
  `request.user` is a signed-in `accounts.User`, never `AnonymousUser`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

if TYPE_CHECKING:
    from accounts.models import User


class HtmxRequest(HttpRequest):
    htmx: HtmxDetails


class AuthenticatedRequest(HtmxRequest):
    user: User  # narrowed from HttpRequest's `User | AnonymousUser`
