"""Reactions to account events. Idempotent: each email is sent once per event."""

from accounts import tasks
from accounts.events import UserRegistered


def send_verification_email(event: UserRegistered) -> None:
    """UserRegistered: email the verification link (the task skips a verified user)."""
    assert event.meta is not None  # handlers are given stored events, with their envelope
    tasks.send_verification_email.enqueue(
        user_id=event.user_id,
        base_url=event.base_url,
        idempotency_key=f"event:{event.meta.id}:verify_email",
    )
