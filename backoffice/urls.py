from django.urls import path

from backoffice.views import (
    activity,
    api_keys,
    dashboard,
    live,
    onboarding,
    orders,
    products,
    reports,
    stock,
    team,
    webhooks,
)

app_name = "backoffice"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    # Products and stock
    path("products/", products.product_list, name="product_list"),
    path("products/new/", products.product_create, name="product_create"),
    path("products/bulk/", products.product_bulk, name="product_bulk"),
    path("products/export.csv", products.product_export, name="product_export"),
    path("products/import/", products.product_import, name="product_import"),
    path("products/<int:pk>/edit/", products.product_edit, name="product_edit"),
    path("products/<int:pk>/inline/", products.product_inline_edit, name="product_inline_edit"),
    path("products/<int:pk>/stock/", stock.stock_detail, name="stock_detail"),
    # Orders (the vendor's part of each order)
    path("orders/", orders.order_list, name="order_list"),
    path("orders/live/badge/", live.orders_badge, name="orders_badge"),
    path("orders/<int:order_pk>/", orders.order_detail, name="order_detail"),
    path("orders/<int:order_pk>/ship/", orders.order_ship, name="order_ship"),
    path(
        "orders/<int:order_pk>/lines/<int:line_pk>/cancel/",
        orders.order_line_cancel,
        name="order_line_cancel",
    ),
    # Reports
    path("reports/", reports.report_list, name="report_list"),
    path("reports/<int:pk>/", reports.report_detail, name="report_detail"),
    path("reports/<int:pk>/download/", reports.report_download, name="report_download"),
    # Team
    path("team/", team.member_list, name="member_list"),
    path("team/<int:pk>/remove/", team.member_remove, name="member_remove"),
    path("team/invitations/<int:pk>/revoke/", team.invitation_revoke, name="invitation_revoke"),
    # Activity: the shop's part of the audit log (owners)
    path("activity/", activity.activity_list, name="activity_list"),
    # Webhooks to the shop's own systems (owners)
    path("webhooks/", webhooks.webhook_list, name="webhook_list"),
    path("webhooks/<int:pk>/rotate/", webhooks.webhook_rotate, name="webhook_rotate"),
    path("webhooks/<int:pk>/toggle/", webhooks.webhook_toggle, name="webhook_toggle"),
    path("webhooks/<int:pk>/delete/", webhooks.webhook_delete, name="webhook_delete"),
    path("webhooks/<int:pk>/test/", webhooks.webhook_test, name="webhook_test"),
    path("webhooks/deliveries/", webhooks.webhook_deliveries, name="webhook_deliveries"),
    path("webhooks/deliveries/<int:pk>/retry/", webhooks.webhook_retry, name="webhook_retry"),
    # API keys for the shop's integrations (owners)
    path("api-keys/", api_keys.api_key_list, name="api_key_list"),
    path("api-keys/<int:pk>/revoke/", api_keys.api_key_revoke, name="api_key_revoke"),
    # Becoming a vendor, joining a team (signed in, not yet a member)
    path("apply/", onboarding.apply, name="apply"),
    path("invitations/<str:token>/", onboarding.invitation_accept, name="invitation_accept"),
]
