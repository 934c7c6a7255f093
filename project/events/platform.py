"""Events of the platform itself (not of one business app)."""

from dataclasses import dataclass

from project.events import Event


@dataclass(frozen=True, kw_only=True)
class EmailSent(Event):
    """An email left through the configured mailer. Aggregate: the recipient user."""

    template: str
    to_user_id: int | None
    subject: str
