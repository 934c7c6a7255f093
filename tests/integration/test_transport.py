"""The production shape over HTTP: uvicorn serving project.settings with BAZAAR_MODE=production
behind a (simulated) TLS-terminating proxy on 127.0.0.1, with collected static files. What a
browser receives: security headers with their exact values, __Host- cookies, no-store on
private pages only, the MDN HTTP Observatory score, and the server's JSON access lines."""

import http.client
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher

from tests import factories, observatory
from tests.fixtures.asgi_server import django_env, free_port, spawn, stop, wait_for

HOST = "shop.example.com"
PROXY_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


@dataclass
class ProductionServer:
    port: int
    log: Path

    def request(
        self,
        path: str,
        *,
        method: str = "GET",
        https: bool = True,
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> observatory.Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            sent = {"Host": HOST, **(PROXY_HEADERS if https else {}), **(headers or {})}
            connection.request(method, path, body=body, headers=sent)
            reply = connection.getresponse()
            collected: dict[str, list[str]] = {}
            for name, value in reply.getheaders():
                collected.setdefault(name.lower(), []).append(value)
            return observatory.Response(
                url=f"{'https' if https else 'http'}://{HOST}{path}",
                status=reply.status,
                headers=collected,
                body=reply.read().decode("utf-8", errors="replace"),
            )
        finally:
            connection.close()

    def access_lines(self) -> list[dict]:
        lines = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry["logger"] == "bazaar.access":
                    lines.append(entry)
        return lines


def production_env(static_root: Path) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "BAZAAR_MODE": "production",
        # The test process's key: sessions it creates (force_login) hash alike.
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": HOST,
        "SITE_URL": f"https://{HOST}",
        "EMAIL_HOST": "smtp.example.com",
        "API_JWT_KEYS": "test=Zq4vN8tR2xL6pW0sB3mY7cJ1hK5dF9gA-uE_oI2nQ7w",
        "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        "TRUSTED_PROXIES": "127.0.0.1",
        "STATIC_ROOT": str(static_root),
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="module")
def production_server(django_db_setup, tmp_path_factory) -> Iterator[ProductionServer]:
    directory = tmp_path_factory.mktemp("production")
    env = production_env(directory / "static")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=settings.BASE_DIR,
        env=django_env(**env),
        check=True,
        capture_output=True,
    )
    server = ProductionServer(port=free_port(), log=directory / "uvicorn.log")
    process = spawn(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "project.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(server.port),
            "--no-access-log",
            "--lifespan",
            "off",
        ],
        log=server.log,
        **env,
    )

    def accepting() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"uvicorn exited:\n{server.log.read_text(errors='replace')}")
        try:
            return server.request("/healthz").status == 200
        except OSError:
            return False

    try:
        wait_for(accepting, timeout=30, interval=0.2)
        yield server
    finally:
        stop(process)


def sign_in(server: ProductionServer, user) -> list[str]:
    """Sign in through the login form, as a browser: every Set-Cookie received on the way."""
    # The tests' fast hasher is not one production accepts: hash as production does.
    hasher = Argon2PasswordHasher()
    user.password = hasher.encode(factories.PASSWORD, hasher.salt())
    user.save(update_fields=["password"])
    page = server.request("/accounts/login/")
    cookies = observatory.set_cookie_headers(page)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1)
    reply = server.request(
        "/accounts/login/",
        method="POST",
        headers={
            "Cookie": observatory.cookie_header(cookies),
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"https://{HOST}/accounts/login/",
            "Origin": f"https://{HOST}",
        },
        body=urlencode(
            {"csrfmiddlewaretoken": token, "email": user.email, "password": factories.PASSWORD}
        ),
    )
    assert reply.status == 302, reply.body[:2000]
    return cookies + observatory.set_cookie_headers(reply)


def scan(server: ProductionServer, path: str, cookies: list[str] | None = None):
    """The Observatory's retrieval of one page: over https, the CORS probe, the http:// chain."""
    cookies = list(cookies or [])
    sent = {"Cookie": observatory.cookie_header(cookies)} if cookies else {}
    auto = server.request(path, headers=sent)
    cors = server.request(path, headers={**sent, "Origin": observatory.OBSERVATORY_ORIGIN})
    first = server.request(path, https=False, headers=sent)
    chain = [first]
    if first.status in {301, 302, 307, 308}:
        chain.append(
            observatory.Response(
                url=first.first("location"), status=auto.status, headers=auto.headers
            )
        )
    site = observatory.Site(
        auto=auto,
        cors=cors,
        http_chain=chain,
        set_cookies=cookies + observatory.set_cookie_headers(auto),
    )
    return auto, observatory.score(site)


EXACT_HEADERS = {
    "strict-transport-security": "max-age=31536000",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "permissions-policy": settings.PERMISSIONS_POLICY,
    "reporting-endpoints": 'csp-endpoint="/csp-report/"',
}


@pytest.mark.django_db(transaction=True)
def test_production_pages_carry_the_security_headers(production_server):
    response = production_server.request("/")

    assert response.status == 200
    for name, value in EXACT_HEADERS.items():
        assert response.all(name) == [value], name
    assert "camera=()" in settings.PERMISSIONS_POLICY
    policy = response.first("content-security-policy")
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert policy == (
        "default-src 'none'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        f"style-src 'self' 'nonce-{nonce}'; "
        "img-src 'self' data:; font-src 'self'; manifest-src 'self'; "
        f"connect-src 'self' wss://{HOST}; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; "
        "report-uri /csp-report/; report-to csp-endpoint"
    )


def test_hsts_subdomains_preload_and_the_proxy_header_only_when_opted_in():
    def production_settings(**extra: str) -> str:
        environment = production_env(Path("/nonexistent"))
        del environment["SECURE_PROXY_SSL_HEADER"]
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "import django; django.setup(); from django.conf import settings as s; "
                "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
                "s.SECURE_HSTS_PRELOAD, s.SECURE_PROXY_SSL_HEADER)",
            ],
            cwd=settings.BASE_DIR,
            env=django_env(**environment, **extra),
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()

    assert production_settings() == "31536000 False False None"
    assert (
        production_settings(
            SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
            SECURE_HSTS_PRELOAD="true",
            SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        )
        == "31536000 True True ('HTTP_X_FORWARDED_PROTO', 'https')"
    )


@pytest.mark.django_db(transaction=True)
def test_plain_http_is_redirected_to_https_on_the_same_host(production_server):
    response = production_server.request("/products/?page=2", https=False)

    assert response.status == 301
    assert response.first("location") == f"https://{HOST}/products/?page=2"


@pytest.mark.django_db(transaction=True)
def test_cookies_are_host_prefixed_secure_and_samesite(production_server, shopper):
    cookies = sign_in(production_server, shopper)

    by_name = {raw.split("=", 1)[0]: raw for raw in cookies}
    # The session, CSRF and "this browser signed in before" cookies (accounts.ratelimit).
    assert set(by_name) == {"__Host-csrftoken", "__Host-sessionid", "__Host-login_unlock"}
    for raw in by_name.values():
        attributes = [part.strip() for part in raw.split(";")[1:]]
        assert "Secure" in attributes
        assert "Path=/" in attributes
        assert "SameSite=Lax" in attributes
        assert not any(part.lower().startswith("domain=") for part in attributes)
    assert "HttpOnly" in by_name["__Host-sessionid"]
    assert "HttpOnly" in by_name["__Host-login_unlock"]


PRIVATE_PAGES = ["/accounts/login/", "/accounts/profile/", "/cart/", "/orders/", "/backoffice/"]


@pytest.mark.django_db(transaction=True)
def test_private_pages_and_signed_in_pages_are_no_store(production_server, shopper):
    anonymous_login = production_server.request("/accounts/login/")
    cookies = sign_in(production_server, shopper)
    sent = {"Cookie": observatory.cookie_header(cookies)}

    assert "no-store" in anonymous_login.first("cache-control")
    for path in PRIVATE_PAGES:
        response = production_server.request(path, headers=sent)
        assert "no-store" in (response.first("cache-control") or ""), path
    # A public page, but rendered for this signed-in shopper.
    home = production_server.request("/", headers=sent)
    assert home.status == 200
    assert ">My orders</a>" in home.body
    assert home.first("cache-control") == "no-store"


@pytest.mark.django_db(transaction=True)
def test_public_catalogue_pages_are_not_no_store_for_visitors(production_server):
    product = factories.ProductFactory()

    for path in ["/", "/products/", f"/p/{product.slug}/"]:
        response = production_server.request(path)
        assert response.status == 200, path
        assert "no-store" not in (response.first("cache-control") or ""), path


@pytest.mark.django_db(transaction=True)
def test_scripts_and_stylesheet_carry_the_integrity_of_the_served_file(production_server):
    import base64
    import hashlib

    page = production_server.request("/")
    tags = re.findall(
        r'<(?:script|link rel="stylesheet") [^>]*(?:src|href)="([^"]+)"[^>]*>', page.body
    )
    integrities = re.findall(r'integrity="(sha384-[^"]+)"', page.body)

    assert len(tags) == 4
    assert len(integrities) == 4
    for url, integrity in zip(tags, integrities, strict=True):
        served = production_server.request(url)
        assert served.status == 200, url
        assert re.search(r"\.[0-9a-f]{12}\.(js|css)$", url), url  # the hashed name
        # http.client decoded nothing: whitenoise sends it uncompressed without Accept-Encoding.
        digest = hashlib.sha384(served.body.encode()).digest()
        assert integrity == "sha384-" + base64.b64encode(digest).decode(), url


@pytest.mark.django_db(transaction=True)
def test_observatory_score_is_at_least_130_for_the_home_and_a_signed_in_page(
    production_server, shopper
):
    """Scored as the MDN HTTP Observatory scores it (tests/observatory.py)."""
    _, home = scan(production_server, "/")
    cookies = sign_in(production_server, shopper)
    orders_page, signed_in = scan(production_server, "/orders/", cookies)

    print(f"\nObservatory, home page /:\n{home.breakdown()}")
    print(f"Observatory, signed-in page /orders/:\n{signed_in.breakdown()}")
    assert orders_page.status == 200
    assert home.score >= 130, home.breakdown()
    assert signed_in.score >= 130, signed_in.breakdown()
    assert signed_in.results["cookies"] == "cookies-secure-with-httponly-sessions-and-samesite"
    assert home.grade == signed_in.grade == "A+"


@pytest.mark.django_db(transaction=True)
def test_the_access_line_is_json_with_the_verification_token_masked(production_server, shopper):
    secret = "Zm9vYmFyLXNlY3JldC10b2tlbi0xMjM0NTY3ODkw"
    cookies = sign_in(production_server, shopper)
    production_server.request(
        f"/accounts/verify/{secret}/", headers={"X-Request-ID": "trace-verify-1"}
    )
    production_server.request(
        "/orders/",
        headers={"Cookie": observatory.cookie_header(cookies), "X-Request-ID": "trace-orders-1"},
    )
    production_server.request("/no-such-page/", headers={"X-Request-ID": "trace-404-1"})

    def line(request_id: str) -> dict:
        return wait_for(
            lambda: next(
                (
                    entry
                    for entry in production_server.access_lines()
                    if entry["request_id"] == request_id
                ),
                None,
            ),
            timeout=5,
        )

    verify = line("trace-verify-1")
    assert secret not in production_server.log.read_text()
    assert verify["http"]["path"] == "/accounts/verify/[masked]/"
    assert verify["message"].startswith("GET /accounts/verify/[masked]/ ")
    assert verify["http"]["route"] == "accounts:verify"
    assert verify["http"]["pattern"] == "accounts/verify/<str:token>/"
    assert verify["client_ip"] == "203.0.113.7"
    orders = line("trace-orders-1")
    assert orders["user_id"] == shopper.pk
    assert orders["http"]["status"] == 200
    assert orders["http"]["method"] == "GET"
    assert orders["http"]["route"] == "shop:order_list"
    assert isinstance(orders["http"]["duration_ms"], float)
    not_found = [
        json.loads(entry)
        for entry in production_server.log.read_text().splitlines()
        if entry.startswith("{") and "/no-such-page/" in entry
    ]
    assert {(entry["logger"], entry["request_id"]) for entry in not_found} == {
        ("bazaar.access", "trace-404-1"),
        ("django.request", "trace-404-1"),
    }
