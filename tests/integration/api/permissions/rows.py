"""One row per API operation: the status each actor gets. Actors: anonymous, a shopper,
vendor A's member, vendor B's member, staff. Objects in a row's path belong to vendor A (or
to the shopper), so vendor B asking for them must get 404, never A's data."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ACTORS = ("anonymous", "shopper", "vendor_a", "vendor_b", "staff")


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # as the OpenAPI document names it: "/api/v1/vendor/products/{product_id}"
    expect: dict[str, int]  # actor -> status code
    params: Callable[[Any], dict[str, Any]] = field(default=lambda world: {})
    body: Callable[[Any], dict[str, Any]] | None = None
    query: Callable[[Any], dict[str, Any]] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert set(self.expect) == set(ACTORS), (
            f"{self.method} {self.path}: every actor needs a status"
        )


def everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(ACTORS, status)


def signed_in(status: int, *, anonymous: int = 401) -> dict[str, int]:
    return {**everyone(status), "anonymous": anonymous}
