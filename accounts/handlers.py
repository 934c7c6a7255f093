"""Reactions to account events. Idempotent: each email is sent once per event."""

from accounts import tasks
from project.events import Event


def send_verification_email(event: Event) -> None:
    """UserRegistered: email the verification link (the task skips a verified user)."""
    tasks.send_verification_email.enqueue(
        user_id=event.user_id,
        base_url=event.base_url,
        idempotency_key=f"event:{event.meta.id}:verify_email",
    )
