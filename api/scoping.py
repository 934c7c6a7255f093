"""Vendor endpoints run their database work like a backoffice request: one transaction in the
vendor's row-level-security scope (docs/database-security.md), so a query that forgets its
`vendor=` filter still sees and changes nothing of another shop.
"""

from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.db import transaction

from project.db import scope
from shop.models import Vendor


def _scoped[**P, R](
    vendor_id: int, function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
) -> R:
    with transaction.atomic(), scope.vendor_scope(vendor_id):
        return function(*args, **kwargs)


async def in_vendor_scope[**P, R](
    vendor: Vendor, function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
) -> R:
    """Run `function` (a selector that returns a list, or a service) in one transaction
    scoped to `vendor`. Materialise querysets inside it: rows read after it ends are
    read in the system scope."""
    return await sync_to_async(_scoped)(vendor.pk, function, *args, **kwargs)
