"""Scheduled purges: what each deletes, how it deletes in bounded batches, and the log line
each run writes.

Each purge is a service in the app that owns the rows (`purge_...(*, dry_run=False) -> int`,
the number deleted, or that would be). `manage.py purge` and the hourly schedules run them
through `run_purge`. The audit log (project.audit) is append-only and never purged.
"""

import datetime
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger("bazaar.housekeeping")


@dataclass(frozen=True)
class Purge:
    name: str
    service: str  # dotted path of `purge_...(*, dry_run: bool = False) -> int`
    deletes: str


PURGES = {
    purge.name: purge
    for purge in [
        Purge(
            "outbox",
            "project.events.housekeeping.purge_delivered_events",
            "delivered outbox events (and their handler receipts) older than "
            "PURGE_OUTBOX_AFTER_DAYS; pending and parked events stay",
        ),
        Purge(
            "tasks",
            "project.background.housekeeping.purge_finished_tasks",
            "task records finished successfully more than PURGE_TASKS_AFTER_DAYS ago, failed "
            "ones after PURGE_FAILED_TASKS_AFTER_DAYS, and Django-Q2's own task results",
        ),
        Purge(
            "emails",
            "project.background.housekeeping.purge_sent_email_keys",
            "send-once keys of emails sent more than PURGE_SENT_EMAILS_AFTER_DAYS ago; keys "
            "still sending or failed stay",
        ),
        Purge(
            "heartbeats",
            "project.background.housekeeping.purge_heartbeats",
            "liveness heartbeats of workers and dispatchers silent for PURGE_HEARTBEATS_AFTER_DAYS",
        ),
        Purge(
            "exports",
            "accounts.exports.purge_expired_exports",
            "files of personal-data exports past DATA_EXPORT_TTL (the row stays, expired)",
        ),
        Purge(
            "reports",
            "shop.services.reports.purge_expired_reports",
            "files of sales reports past REPORT_TTL (the row stays, expired)",
        ),
        Purge(
            "carts",
            "shop.services.cart.purge_abandoned_carts",
            "guest carts untouched for PURGE_CARTS_AFTER_DAYS (never a signed-in user's, "
            "never one being checked out or merged)",
        ),
        Purge(
            "sessions",
            "project.sessions.purge_expired_sessions",
            "database rows of expired sessions",
        ),
        Purge(
            "idempotency",
            "api.idempotency.purge_expired_records",
            "API idempotency records (first answers kept for retries) claimed more than "
            "API_IDEMPOTENCY_TTL_HOURS ago",
        ),
        Purge(
            "webhooks",
            "webhooks.services.purge_old_deliveries",
            "webhook deliveries delivered or failed more than "
            "PURGE_WEBHOOK_DELIVERIES_AFTER_DAYS ago; pending ones stay",
        ),
        Purge(
            "api-refresh-tokens",
            "api.services.sessions.purge_expired_refresh_tokens",
            "the API's refresh-token rows expired more than a day ago (used, revoked or not)",
        ),
    ]
}


def run_purge(*, name: str, dry_run: bool = False) -> int:
    """Run one purge and write one `bazaar.housekeeping` log line with its count."""
    purge = PURGES[name]
    started = time.monotonic()
    count = import_string(purge.service)(dry_run=dry_run)
    seconds = round(time.monotonic() - started, 3)
    verb = "would delete" if dry_run else "deleted"
    logger.info(
        "Purge %s %s %s in %.3f s",
        name,
        verb,
        count,
        seconds,
        extra={
            "event": {
                "event": "purge",
                "purge": name,
                "dry_run": dry_run,
                "count": count,
                "seconds": seconds,
            }
        },
    )
    return count


def older_than(days: float) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days)


def delete_in_batches(queryset: models.QuerySet, *, dry_run: bool = False) -> int:
    """Delete the queryset's rows PURGE_BATCH_SIZE at a time, each batch in its own short
    transaction, so a large purge never holds many locks or a long transaction. Rows another
    transaction has locked (in use right now) are skipped (`SKIP LOCKED`); the delete
    re-applies the queryset's filter, so a row changed since it was picked stays. Returns the
    rows of the queryset's model deleted (or, with dry_run, how many match)."""
    if dry_run:
        return queryset.count()
    label = queryset.model._meta.label
    deleted = 0
    while True:
        with transaction.atomic():
            batch = list(
                queryset.select_for_update(skip_locked=True)
                .order_by()
                .values_list("pk", flat=True)[: settings.PURGE_BATCH_SIZE]
            )
            if not batch:
                return deleted
            # only("pk"): a model with cascades is fetched before its delete; its columns
            # (an event's payload) need not be.
            _total, per_model = queryset.filter(pk__in=batch).only("pk").delete()
        deleted += per_model.get(label, 0)
