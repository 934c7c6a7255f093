"""`{{ url|absolute }}`: a site path made absolute for an email (mail clients have no page
to resolve a relative link or image against); an already absolute URL (a CDN's
MEDIA_URL) is left as it is."""

from django import template

from project import emails

register = template.Library()


@register.filter
def absolute(url: str) -> str:
    if url.startswith(("https://", "http://")):
        return url
    return emails.absolute_url(url)
