"""A vendor's live backoffice: `/ws/vendor/` (any backoffice page), `/ws/vendor/orders/` (the
order list) and `/ws/vendor/dashboard/`, in the groups of the vendor the member works for."""

from channels.db import database_sync_to_async

from accounts.models import User
from backoffice.selectors import vendors as vendor_selectors
from project import live

# The feed group each page's socket joins, beside the vendor's group (project.live).
PAGE_FEEDS = {None: "nav", "orders": "orders", "dashboard": "dashboard"}


class VendorConsumer(live.LiveConsumer):
    async def authorise(self, user: User) -> list[str] | None:
        # The same lookup as the backoffice views: the member's approved or suspended vendor.
        vendor = await database_sync_to_async(vendor_selectors.get_vendor_for_member)(user=user)
        if vendor is None:
            return None
        page = self.scope["url_route"]["kwargs"].get("page")
        return [live.vendor_group(vendor.pk), live.vendor_feed_group(vendor.pk, PAGE_FEEDS[page])]
