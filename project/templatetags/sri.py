"""`{% sri "js/app.js" %}`: the Subresource Integrity value of a static file as served.

With the manifest storage (production) the served file is the hashed copy collectstatic
wrote, so that is the one hashed; otherwise (development) the file the finders serve. The
digest is kept per file and modification time, so an edited file gets a new one.
"""

import base64
import hashlib
import os
from functools import lru_cache

from django import template
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage

register = template.Library()


def served_file(path: str) -> str:
    if isinstance(staticfiles_storage, ManifestFilesMixin):
        return staticfiles_storage.path(staticfiles_storage.stored_name(path))
    found = finders.find(path)
    if not found:
        raise template.TemplateSyntaxError(f"No static file {path!r} to compute its integrity.")
    return str(found)


@lru_cache(maxsize=64)
def _digest(filename: str, mtime_ns: int) -> str:
    with open(filename, "rb") as handle:
        digest = hashlib.sha384(handle.read()).digest()
    return "sha384-" + base64.b64encode(digest).decode()


@register.simple_tag
def sri(path: str) -> str:
    filename = served_file(path)
    return _digest(filename, os.stat(filename).st_mtime_ns)
