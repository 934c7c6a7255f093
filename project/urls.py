from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from project import csp, views

admin.site.site_header = "Bazaar administration"
admin.site.site_title = "Bazaar admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("backoffice/", include("backoffice.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("csp-report/", csp.report, name="csp_report"),
    path("", include("project.background.urls")),
    path("", include("shop.urls")),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
