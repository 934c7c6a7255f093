"""Anonymous catalogue pages kept in the cache, invalidated by version keys the services bump.

What is kept: the view's response (status 200, its headers and body) for a visitor who is
nobody yet: not signed in, no cart, no message waiting, no session with anything in it.
Everyone else gets the page rendered for them (and `Cache-Control: no-store`).

Per-request values never leave the request that made them. Before a page is stored, this
request's CSP nonce and CSRF token are replaced in its body by placeholders; a hit puts the
new request's own nonce (so the page matches the CSP header the middleware sends) and a
CSRF token for the visitor's own cookie back in.

Invalidation: every stored page remembers the version tokens of the scopes it shows (the
catalogue as a whole; a product page also its product's stock) as they were *before* its
data was read. Services bump a scope (a new random token) once their transaction has
committed, so a page rendered from older data can never be served after the bump. A missing
token (evicted, expired) is replaced by a new one, which also only causes misses.

Conditional GET: the ETag names the page, its versions and the visitor's CSRF secret, so a
browser revalidates with If-None-Match and gets a 304 with no body while nothing it shows
has changed. The 304 carries no CSP header: the browser keeps the stored page's, whose nonce
its stored body carries.

Everyone else (signed in, a cart, a message waiting) shares the same pages but for a few
parts of their own: the header's account links and cart badge, the banner, the messages, the
CSRF token. For them the cache keeps only what every visitor sees (the document's title and
description and the page's <main> element, with the same placeholders and the same versions)
and renders base.html around it for each request (templates/page_cache/shell.html): the
visitor's own parts cost the user's row, the badge's count and a small template, not the
page's queries and rendering. So nothing inside <main> of a cached view may depend on who is
looking (the tests render it for two users and compare).
"""

import functools
import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import cache
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.middleware import csrf
from django.middleware.csp import get_nonce
from django.shortcuts import render
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.utils.safestring import mark_safe

from shop.models.catalogue import LOW_STOCK_THRESHOLD

logger = logging.getLogger("bazaar.page_cache")

CATALOGUE = "catalogue"
NONCE_PLACEHOLDER = b"<page-cache:csp-nonce>"
CSRF_PLACEHOLDER = b"<page-cache:csrf-token>"
HIT_HEADER = "X-Page-Cache"
SHELL_TEMPLATE = "page_cache/shell.html"
# Messages waiting in a cookie (the default message storage tries the cookie first).
_MESSAGES_COOKIE = CookieStorage.cookie_name
# A product's own version lives a day after its last bump; a missing one only means misses.
PRODUCT_VERSION_SECONDS = 24 * 3600
_MASKED_TOKEN = re.compile(
    rb"(?<![A-Za-z0-9])[A-Za-z0-9]{%d}(?![A-Za-z0-9])" % csrf.CSRF_TOKEN_LENGTH
)
# What decides which rendering a request gets, besides the path and query.
_VARIANT_HEADERS = ("HTTP_HX_REQUEST", "HTTP_HX_TARGET", "HTTP_HX_BOOSTED")

ScopesOf = Callable[..., Iterable[str]]


def product_scope(slug: str) -> str:
    return f"product:{slug}"


# --- Reading ---------------------------------------------------------------------------


def cache_catalogue_page(scopes: ScopesOf = lambda request, **kwargs: (CATALOGUE,)):
    """Decorate a GET view whose page depends only on the URL, the htmx headers and the data of
    `scopes(request, **view_kwargs)`, but for base.html's per-visitor parts outside <main>:
    anonymous visitors without a state get the whole page from the cache, everyone else its
    shared parts with their own rendered around them."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if settings.PAGE_CACHE_SECONDS <= 0:
                response = view(request, *args, **kwargs)
                patch_cache_control(response, no_store=True)
                return response
            if is_nobody(request):
                return _serve(request, view, args, kwargs, [*scopes(request, **kwargs)])
            response = _serve_shared(request, view, args, kwargs, [*scopes(request, **kwargs)])
            patch_cache_control(response, no_store=True)
            return response

        return wrapped

    return decorator


def is_nobody(request: HttpRequest) -> bool:
    """True for a visitor whose pages are everyone's: no session with anything in it (so not
    signed in, no cart, no half-finished sign-in) and no message waiting in a cookie."""
    if _MESSAGES_COOKIE in request.COOKIES:
        return False
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return True
    return not request.session.keys()


def _serve(
    request: HttpRequest,
    view: Callable[..., HttpResponse],
    args: tuple,
    kwargs: dict,
    scopes: list[str],
) -> HttpResponse:
    page_key, versions, entry = _lookup(request, scopes, kind="")
    etag = _etag(page_key, versions, request.META.get("CSRF_COOKIE"))
    not_modified = _not_modified(request, etag)
    if not_modified is not None:
        return not_modified

    if entry is not None and versions is not None and entry["versions"] == versions:
        response = _from_entry(request, entry)
        response[HIT_HEADER] = "hit"
    else:
        response = view(request, *args, **kwargs)
        if versions is not None and _storable(response):
            _store(page_key, _entry(request, response, versions))
        response[HIT_HEADER] = "miss"
        if not _storable(response):
            return response
    # The visitor's CSRF cookie may have just been made (a first visit): name its secret.
    _validate(response, _etag(page_key, versions, request.META.get("CSRF_COOKIE")))
    return response


def _serve_shared(
    request: HttpRequest,
    view: Callable[..., HttpResponse],
    args: tuple,
    kwargs: dict,
    scopes: list[str],
) -> HttpResponse:
    """The page for a visitor with a state of their own: the shared parts from the cache (or
    from this rendering, then kept), the visitor's own parts rendered around them."""
    page_key, versions, entry = _lookup(request, scopes, kind="shared:")
    if entry is not None and versions is not None and entry["versions"] == versions:
        response = _from_shared_entry(request, entry)
        response[HIT_HEADER] = "hit"
        return response
    response = view(request, *args, **kwargs)
    if versions is not None and _storable(response):
        shared = _shared_entry(request, response, versions)
        if shared is not None:
            _store(page_key, shared)
    response[HIT_HEADER] = "miss"
    return response


# The parts of a full page that every visitor shares (base.html's blocks title_tag,
# description_tag and main; templates/page_cache/shell.html puts them back).
_SHARED_PARTS = {
    "title": (b"<title>", b"</title>"),
    "description": (b'<meta name="description" content="', b">"),
    "main": (b'<main id="main"', b"</main>"),
}


def _shared_entry(request: HttpRequest, response: HttpResponse, versions: list[str]) -> dict | None:
    """What every visitor sees of this response, with placeholders for the per-request values:
    the title, description and <main> of a full page, or the whole of an htmx fragment (no
    layout, so nothing of the visitor's). None: nothing to share (a page without <main>)."""
    entry = _entry(request, response, versions)
    content = entry["content"]
    if b"<html" not in content:
        if not getattr(request, "htmx", False) or request.headers.get("HX-Boosted"):
            return None
        return {**entry, "kind": "whole"}
    parts = {}
    for name, (start, end) in _SHARED_PARTS.items():
        begin = content.find(start)
        # The <main> element ends at the last </main>; the others at their first end.
        finish = content.rfind(end) if name == "main" else content.find(end, begin)
        if begin < 0 or finish < begin:
            return None
        parts[name] = content[begin : finish + len(end)].decode()
    return {"versions": versions, "headers": entry["headers"], "kind": "parts", "parts": parts}


def _from_shared_entry(request: HttpRequest, entry: dict) -> HttpResponse:
    if entry["kind"] == "whole":
        return _from_entry(request, entry)
    parts = {
        name: _restore(request, text.encode()).decode() for name, text in entry["parts"].items()
    }
    # The parts are this server's own rendering of the page, escaped when they were rendered.
    context = {
        # nosemgrep: bazaar-mark-safe-non-literal — our own rendered HTML, not input
        f"shared_{name}": mark_safe(text)  # noqa: S308
        for name, text in parts.items()
    }
    response = render(request, SHELL_TEMPLATE, context)
    for name, value in entry["headers"]:
        response[name] = value
    return response


def _lookup(
    request: HttpRequest, scopes: list[str], *, kind: str
) -> tuple[str, list[str] | None, dict | None]:
    """This request's page key, its scopes' current versions and what is stored under the key
    (`kind` keeps the anonymous pages and the shared parts apart)."""
    page_key = f"page:{_release()}:{_database()}:{kind}{_variant_digest(request)}"
    versions, entry = _read([_version_key(scope) for scope in scopes], page_key)
    return page_key, versions, entry


def _read(version_keys: list[str], page_key: str) -> tuple[list[str] | None, dict | None]:
    """The scopes' current versions and the stored page, in one round trip (None: no cache)."""
    try:
        found = cache.get_many([*version_keys, page_key])
        missing = [key for key in version_keys if key not in found]
        for key in missing:
            cache.add(key, secrets.token_hex(8), timeout=_version_timeout(key))
        if missing:
            found.update(cache.get_many(missing))
        versions = [found[key] for key in version_keys]
    except Exception as exc:  # noqa: BLE001 - without the cache the page is rendered
        logger.warning("Page cache unavailable (%s); rendering the page", exc)
        return None, None
    return versions, found.get(page_key)


def _store(page_key: str, entry: dict) -> None:
    try:
        cache.set(page_key, entry, timeout=settings.PAGE_CACHE_SECONDS)
    except Exception as exc:  # noqa: BLE001
        logger.warning("Page cache store failed (%s)", exc)


def _storable(response: HttpResponse) -> bool:
    return (
        response.status_code == 200
        and not response.streaming
        and not response.cookies
        and "private" not in response.get("Cache-Control", "")
    )


def _entry(request: HttpRequest, response: HttpResponse, versions: list[str]) -> dict:
    """The response with this request's nonce and CSRF token(s) replaced by placeholders."""
    content = response.content
    nonce = get_nonce(request)
    if nonce:  # evaluated: the page carries it
        content = content.replace(str(nonce).encode(), NONCE_PLACEHOLDER)
    secret = request.META.get("CSRF_COOKIE")
    if secret and request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):  # a token was handed out

        def placeholder(match: re.Match[bytes]) -> bytes:
            token = match.group().decode()
            # Django's own unmasking (not in the stubs): is this a token for this secret?
            unmasked = csrf._unmask_cipher_token(token)  # type: ignore[attr-defined]
            return CSRF_PLACEHOLDER if unmasked == secret else match.group()

        content = _MASKED_TOKEN.sub(placeholder, content)
    headers = [(name, value) for name, value in response.items() if name != HIT_HEADER]
    return {"versions": versions, "headers": headers, "content": content}


def _from_entry(request: HttpRequest, entry: dict) -> HttpResponse:
    response = HttpResponse(_restore(request, entry["content"]))
    for name, value in entry["headers"]:
        response[name] = value
    return response


def _restore(request: HttpRequest, content: bytes) -> bytes:
    """Stored content with this request's nonce and CSRF token in place of the placeholders."""
    if NONCE_PLACEHOLDER in content:
        # Reading the nonce makes the CSP middleware name it in this response's header.
        content = content.replace(NONCE_PLACEHOLDER, str(get_nonce(request)).encode())
    if CSRF_PLACEHOLDER in content:
        content = content.replace(CSRF_PLACEHOLDER, csrf.get_token(request).encode())
    return content


def _validate(response: HttpResponse, etag: str | None) -> None:
    """Browsers may keep the page but must ask again each time (ETag); no shared cache may."""
    if etag is not None:
        response["ETag"] = etag
    patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, ("Cookie",))


def _not_modified(request: HttpRequest, etag: str | None) -> HttpResponse | None:
    if etag is None or "HTTP_IF_NONE_MATCH" not in request.META:
        return None
    headers = HttpResponse()
    _validate(headers, etag)
    response = get_conditional_response(request, etag=etag, response=headers)
    if response is None or response is headers:
        return None
    # No CSP header on the 304: the browser keeps the one stored with the page (same nonce).
    response._csp_config = {}  # type: ignore[attr-defined]
    response._csp_ro_config = {}  # type: ignore[attr-defined]
    return response


def _etag(page_key: str, versions: list[str] | None, csrf_secret: str | None) -> str | None:
    if versions is None or not csrf_secret:
        return None
    digest = hashlib.sha256("\n".join([page_key, *versions, csrf_secret]).encode()).hexdigest()
    return f'"{digest[:32]}"'


def _variant_digest(request: HttpRequest) -> str:
    parts = [
        request.scheme or "",
        request.get_host(),
        request.path,
        request.META.get("QUERY_STRING", ""),
        *(request.META.get(header, "") for header in _VARIANT_HEADERS),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _database() -> str:
    """Sites (or test runs) on other databases sharing the Redis prefix never meet."""
    return str(connection.settings_dict["NAME"])


def _version_key(scope: str) -> str:
    # Not per release: a worker of the next release bumps what this release's pages read.
    return f"page-version:{_database()}:{scope}"


@functools.cache
def _release() -> str:
    """This release of the code and templates: pages stored by another are never served."""
    digest = hashlib.sha256()
    base = Path(settings.BASE_DIR)
    sources = sorted(
        [
            *(base / "templates").rglob("*.html"),
            *(base / "project").rglob("*.py"),
            *(base / "shop").rglob("*.py"),
            *(base / "accounts").rglob("*.py"),
        ]
    )
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    for path in [*sources, manifest]:
        if path.is_file():
            digest.update(
                str(path.relative_to(base) if path.is_relative_to(base) else path).encode()
            )
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# --- Invalidation ----------------------------------------------------------------------


def _version_timeout(key: str) -> int | None:
    return PRODUCT_VERSION_SECONDS if ":product:" in key else None


def catalogue_changed() -> None:
    """Every catalogue page is out of date once the current transaction commits (a product's
    name, price, picture, visibility or category; a category; a vendor's name or status)."""
    _bump_after_commit([CATALOGUE])


def stock_changed(*, slug: str, before: int, after: int) -> None:
    """A product's stock moved: its page shows the count (the quantity's maximum), every card
    its state (in stock, "Only N left", out of stock), so a change of state or a count shown
    as low also dates the listings."""
    scopes = [product_scope(slug)]
    if _stock_state(before) != _stock_state(after) or "low" in (
        _stock_state(before),
        _stock_state(after),
    ):
        scopes.append(CATALOGUE)
    _bump_after_commit(scopes)


def _stock_state(stock: int) -> str:
    if stock <= 0:
        return "out"
    return "low" if stock <= LOW_STOCK_THRESHOLD else "in"


def _bump_after_commit(scopes: list[str]) -> None:
    """Queue the scopes on this connection and bump them all once the outermost transaction
    commits (a CSV import of a thousand rows bumps the catalogue once). Keys left from a
    rolled-back transaction are bumped by the next commit: one needless miss, never a stale hit."""
    pending: set[str] = connection.__dict__.setdefault("_page_cache_pending", set())
    pending.update(scopes)
    transaction.on_commit(_flush_pending)


def _flush_pending() -> None:
    pending: set[str] = connection.__dict__.get("_page_cache_pending", set())
    if not pending:
        return
    scopes = sorted(pending)
    pending.clear()
    bump(scopes)


def bump(scopes: Iterable[str]) -> None:
    """Give each scope a new version now (outside a transaction: tools, tests, operators)."""
    keys = [_version_key(scope) for scope in scopes]
    try:
        for key in keys:
            cache.set(key, secrets.token_hex(8), timeout=_version_timeout(key))
    except Exception:
        # Pages may show old data until they expire (PAGE_CACHE_SECONDS): say so loudly.
        logger.exception("Page cache versions not bumped: %s", ", ".join(keys))
