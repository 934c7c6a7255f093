"""The API's interactive docs (/api/v1/docs) in a real browser, under the site's nonce CSP:
Swagger UI loads from our static files, renders the operations, and breaks no CSP rule."""

import os

import pytest
from playwright.sync_api import expect

from tests import factories

SHOTS = os.environ.get("BAZAAR_SCREENSHOTS")  # a directory: also save screenshots there


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)])
def test_docs_render_the_operations_under_the_csp(
    site, page, csp_violations, settings, width, height
):
    settings.API_DOCS_PUBLIC = True
    outside: list[str] = []
    page.on(
        "request",
        lambda request: None if request.url.startswith(site) else outside.append(request.url),
    )
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_viewport_size({"width": width, "height": height})

    page.goto(f"{site}/api/v1/docs")
    # Swagger UI draws only after fetching and parsing the whole schema: on a loaded CI machine
    # that took longer than the default 5 s, so the first wait is longer.
    expect(page.get_by_role("heading", name="Bazaar API")).to_be_visible(timeout=30_000)
    token = page.locator(".opblock-post").filter(has_text="/api/v1/auth/token")
    expect(token).to_be_visible()
    expect(token).to_contain_text("Sign in: an access token and a refresh token")
    # Every area is listed: the vendors' stock batch, the shopper's checkout, the webhooks.
    for path in ("/api/v1/vendor/stock", "/api/v1/orders/", "/api/v1/vendor/webhooks/endpoints"):
        expect(page.locator(".opblock").filter(has_text=path).first).to_be_visible()
    # An operation opens and shows its declared answers, problems included.
    token.locator(".opblock-summary").click()
    expect(token.locator(".responses-table")).to_contain_text("Too Many Requests")
    # The page itself never scrolls sideways (wide code samples scroll in their own box).
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/api-docs-{width}.png", full_page=True)

    assert csp_violations == []
    assert errors == []
    assert outside == []


def test_private_docs_are_not_shown_to_a_shopper(site, page, settings):
    settings.API_DOCS_PUBLIC = False
    factories.UserFactory(email="shopper@example.com")
    response = page.goto(f"{site}/api/v1/docs")
    assert response is not None
    assert response.status == 404
