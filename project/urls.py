from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from api.main import api
from project import csp, error_pages, media, views

# The shop-layout error pages, with a plain fallback (project.error_pages).
handler403 = error_pages.permission_denied
handler404 = error_pages.page_not_found

admin.site.site_header = "Bazaar administration"
admin.site.site_title = "Bazaar admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("backoffice/", include("backoffice.urls")),
    path("api/v1/", api.urls),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("csp-report/", csp.report, name="csp_report"),
    path("", include("project.background.urls")),
    path("", include("shop.urls")),
]

if settings.MEDIA_SERVE:
    # Product images, in development and production alike, unless a proxy, an object store
    # or a CDN serves MEDIA_URL (project.media; README "Media files").
    urlpatterns.append(
        path(f"{settings.MEDIA_URL.lstrip('/')}<path:path>", media.public_media, name="media")
    )
