"""A vendor's live backoffice: `/ws/vendor/`, the group of the vendor the member works for."""

from channels.db import database_sync_to_async

from accounts.models import User
from backoffice.selectors import vendors as vendor_selectors
from project import live


class VendorConsumer(live.LiveConsumer):
    async def authorise(self, user: User) -> str | None:
        # The same lookup as the backoffice views: the member's approved or suspended vendor.
        vendor = await database_sync_to_async(vendor_selectors.get_vendor_for_member)(user=user)
        return live.vendor_group(vendor.pk) if vendor is not None else None
