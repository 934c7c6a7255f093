"""Rate limits across two real server processes: one count in Redis, whichever serves."""

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

from project import ratelimit
from tests import factories
from tests.fixtures.asgi_server import AsgiServer


def _post_login(opener, url: str, email: str, password: str) -> tuple[int, str, str | None]:
    with opener.open(f"{url}/accounts/login/") as page:  # noqa: S310 - the local test server
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode())
    data = urllib.parse.urlencode(
        {"email": email, "password": password, "csrfmiddlewaretoken": token.group(1)}
    ).encode()
    request = urllib.request.Request(  # noqa: S310
        f"{url}/accounts/login/", data=data, headers={"Referer": f"{url}/accounts/login/"}
    )
    try:
        with opener.open(request) as response:  # noqa: S310
            return response.status, response.read().decode(), None
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers.get("Retry-After")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_failed_sign_ins_on_two_servers_share_one_count(transactional_db, tmp_path):
    user = factories.UserFactory(email="owner@example.com")
    limit, window = ratelimit.rule("login_account_address")  # the servers' setting too
    servers = [AsgiServer(log=tmp_path / f"uvicorn-{n}.log").start() for n in range(2)]
    try:
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect
        )
        # The limit's worth of wrong passwords, alternating between the two processes.
        statuses = [
            _post_login(opener, servers[n % 2].url, user.email, "wrong-password-1")[0]
            for n in range(limit)
        ]
        # The next try, right password, on either process: refused by the shared count.
        refusals = [
            _post_login(opener, server.url, user.email, factories.PASSWORD) for server in servers
        ]
    finally:
        for server in servers:
            server.stop()

    assert statuses == [200] * limit
    for status, page, retry_after in refusals:
        assert status == 429
        assert f"Too many attempts. Try again in {window // 60} minutes." in page
        assert window - 60 <= int(retry_after) <= window
