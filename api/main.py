"""The JSON API, `/api/v1/`: one NinjaAPI with the routers of each area. Every operation needs
a bearer token unless it says `auth=None`; what a caller may then do is checked by the
guards in `api.auth`, and every endpoint has a row in the permission matrix test
(tests/api/test_permission_matrix.py)."""

from api import auth, docs, errors, openapi
from api.routers import auth as auth_routes
from api.routers import cart, catalogue, orders, vendor, webhooks

api = openapi.BazaarApi(
    title="Bazaar API",
    version="1",
    description=(
        "Vendors' integrations and the shop's mobile app. Errors are problem+json (RFC 9457)."
    ),
    auth=auth.bearer,
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
    docs=docs.SwaggerUnderCsp(),
    docs_decorator=docs.docs_access,
    rate_limited=True,
)
errors.install(api)

api.add_router("/auth/", auth_routes.router)
api.add_router("/catalogue/", catalogue.router)
api.add_router("/cart/", cart.router)
api.add_router("/orders/", orders.router)
api.add_router("/vendor/", vendor.router)
api.add_router("/vendor/webhooks/", webhooks.router)
