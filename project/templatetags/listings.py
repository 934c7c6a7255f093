"""`{% for number in page_obj|page_links %}`: the page numbers a pagination bar links to,
None for a gap (project.listings.page_links)."""

from django import template
from django.core.paginator import Page

from project import listings

register = template.Library()


@register.filter
def page_links(page: Page) -> list[int | None]:
    return list(listings.page_links(page))
