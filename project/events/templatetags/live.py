"""{% event_sequence order as live_seq %}: the aggregate's last event number, for `data-seq`."""

from django import template

from project import events

register = template.Library()


@register.simple_tag
def event_sequence(aggregate) -> int:
    return events.latest_sequence(aggregate)
