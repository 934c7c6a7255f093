from django import template

from backoffice.selectors import activity as activity_selectors

register = template.Library()


@register.filter
def audit_action_label(action: str) -> str:
    """An audit action's readable name ("team.invited" → "Team member invited")."""
    return activity_selectors.action_label(action)
