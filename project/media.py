"""Public media (product images) served by Django itself when no proxy, object store or CDN
does it (MEDIA_SERVE; see the README's "Media files").

Only image files under the public upload folders are answered, with their type fixed by the
name (never sniffed), `nosniff`, a sandboxing CSP and a year of caching: stored image names
carry a digest of their content (shop.images), so a name never changes meaning. Anything
else under MEDIA_ROOT, or outside it, is a 404.
"""

import posixpath

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase
from django.views.decorators.http import require_safe
from django.views.static import serve

PUBLIC_FOLDERS = ("products/",)
IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}
CACHE_CONTROL = "public, max-age=31536000, immutable"


@require_safe
def public_media(request: HttpRequest, path: str) -> HttpResponseBase:
    """One product image from MEDIA_ROOT, or 404."""
    path = posixpath.normpath(path).lstrip("/")
    extension = posixpath.splitext(path)[1].lower()
    if not path.startswith(PUBLIC_FOLDERS) or extension not in IMAGE_TYPES:
        raise Http404("No such image.")
    response = serve(request, path, document_root=str(settings.MEDIA_ROOT))
    if isinstance(response, FileResponse):
        response["Content-Type"] = IMAGE_TYPES[extension]
        response.headers.pop("Content-Encoding", None)
    response["Cache-Control"] = CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    # An image is never a document: nothing in it may run, even if opened on its own.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
