"""Reactions to account events."""

from accounts import tasks
from project.events import Event


def send_verification_email(event: Event) -> None:
    """UserRegistered: email the verification link (the task skips a verified user)."""
    tasks.send_verification_email.enqueue(user_id=event.user_id, base_url=event.base_url)
