"""The shopper's live order page: `/ws/orders/<id>/`, for that order's shopper only."""

from channels.db import database_sync_to_async
from django.http import Http404

from accounts.models import User
from project import live
from shop.selectors import orders as order_selectors


@database_sync_to_async
def _may_watch(user: User, order_id: int) -> bool:
    try:
        order_selectors.access_order(user=user, pk=order_id)
    except Http404:
        return False
    return True


class OrderConsumer(live.LiveConsumer):
    async def authorise(self, user: User) -> list[str] | None:
        order_id = int(self.scope["url_route"]["kwargs"]["order_id"])
        if await _may_watch(user, order_id):
            return [live.order_group(order_id)]
        return None
