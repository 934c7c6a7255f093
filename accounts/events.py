"""What happens to accounts. Recorded with aggregate=the user."""

from dataclasses import dataclass

from project.events import Event


@dataclass(frozen=True, kw_only=True)
class UserRegistered(Event):
    user_id: int
    # Where the verification link should point (the request's origin), if known.
    base_url: str | None = None
