"""Cursor pagination: newest first by primary key, `?cursor=` taken from the previous page's
`next_cursor`. A keyset page costs the same at the millionth row as at the first and never
repeats or skips a row when new rows arrive between two pages. Cursors are signed, so a
client cannot forge one to probe rows outside its filter.
"""

from django.core import signing
from django.db.models import Model, QuerySet
from pydantic import BaseModel

from api.errors import ApiError

SALT = "api.cursor"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class CursorPage[T](BaseModel):
    items: list[T]
    next_cursor: str | None


def _after(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(signing.loads(cursor, salt=SALT))
    except (signing.BadSignature, TypeError, ValueError):
        raise ApiError(
            400,
            "This cursor is not one the API gave out.",
            code="bad-cursor",
            errors=[{"field": "cursor", "message": "Invalid cursor."}],
        ) from None


def keyset_page[M: Model](
    queryset: QuerySet[M], *, cursor: str | None, limit: int
) -> tuple[list[M], str | None]:
    """One page of `queryset` (newest first by pk) and the cursor of the next, if any.
    Synchronous: call it inside `scoping.in_vendor_scope` or `sync_to_async`."""
    limit = max(1, min(limit, MAX_LIMIT))
    after = _after(cursor)
    if after is not None:
        queryset = queryset.filter(pk__lt=after)
    rows = list(queryset.order_by("-pk")[: limit + 1])
    next_cursor = signing.dumps(rows[limit - 1].pk, salt=SALT) if len(rows) > limit else None
    return rows[:limit], next_cursor
