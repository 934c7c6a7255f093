"""What happens to vendors. Recorded with aggregate=the vendor."""

from dataclasses import dataclass

from project.events import Event


@dataclass(frozen=True, kw_only=True)
class VendorApproved(Event):
    vendor_id: int
    approved_by_id: int | None
