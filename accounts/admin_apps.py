"""The admin's app config, naming Bazaar's admin site (kept apart: it loads before models)."""

from django.contrib.admin.apps import AdminConfig


class BazaarAdminConfig(AdminConfig):
    default_site = "accounts.admin_site.BazaarAdminSite"
