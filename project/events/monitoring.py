"""Prometheus metrics for the outbox: how much is waiting, how long, and what is parked."""

from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from project.events.models import OutboxEvent


class OutboxCollector:
    """Computed from the outbox at scrape time, so it is right across dispatcher processes."""

    def collect(self):
        now = timezone.now()
        undelivered = OutboxEvent.objects.filter(delivered_at__isnull=True).aggregate(
            pending=Count("id", filter=Q(parked_at__isnull=True)),
            parked=Count("id", filter=Q(parked_at__isnull=False)),
            oldest=Min("created_at", filter=Q(parked_at__isnull=True)),
        )
        pending = GaugeMetricFamily(
            "bazaar_outbox_pending", "Committed domain events not yet delivered (not parked)"
        )
        pending.add_metric([], undelivered["pending"])
        yield pending
        parked = GaugeMetricFamily(
            "bazaar_outbox_parked", "Domain events whose handlers ran out of retries"
        )
        parked.add_metric([], undelivered["parked"])
        yield parked
        lag = GaugeMetricFamily(
            "bazaar_outbox_lag_seconds", "Age of the oldest undelivered (not parked) event"
        )
        oldest = undelivered["oldest"]
        lag.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
        yield lag
