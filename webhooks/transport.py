"""Sending one signed POST to a vendor's endpoint, safely.

The endpoint's host is resolved once, every address is checked (no private, loopback,
link-local, multicast or reserved address unless WEBHOOKS_ALLOW_PRIVATE_ADDRESSES), and the
connection goes to that checked address, so a DNS answer that changes between the check and
the connect (DNS rebinding) cannot point Bazaar into its own network. TLS still verifies the
certificate against the URL's host name. Redirects are not followed.
"""

import hashlib
import hmac
import http.client
import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

USER_AGENT = "Bazaar-Webhooks/1"
EXCERPT_BYTES = 500


class UnsafeDestination(Exception):
    """The URL may not be called (its scheme, or an address in a private network)."""


class SendFailed(Exception):
    """No HTTP answer: connection refused, timed out, TLS failed, host unknown."""


@dataclass(frozen=True)
class Answer:
    status: int
    excerpt: str
    duration_ms: int


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 (hex) of "<timestamp>.<body>" with the endpoint's secret."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(*, secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    """`t=<timestamp>,v1=<signature>[,v1=<signature with the previous secret>]`."""
    signatures = [f"v1={sign(secret=s, timestamp=timestamp, body=body)}" for s in secrets if s]
    return ",".join([f"t={timestamp}", *signatures])


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str) -> None:
    """Refuse a URL Bazaar must not call, without resolving it: the scheme (https only when
    WEBHOOKS_REQUIRE_HTTPS), credentials in it, and a literal private address or localhost."""
    parts = urlsplit(url)
    allowed = {"https"} if settings.WEBHOOKS_REQUIRE_HTTPS else {"https", "http"}
    if parts.scheme not in allowed:
        raise UnsafeDestination("The URL must start with https://.")
    if not parts.hostname:
        raise UnsafeDestination("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeDestination("Put no user name or password in the URL.")
    try:
        parts.port  # noqa: B018 - parsing it raises for a port that is not a number
    except ValueError:
        raise UnsafeDestination("The URL's port is not valid.") from None
    if settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES:
        return
    host = parts.hostname.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        raise UnsafeDestination("The URL must name a public host.")
    try:
        public = is_public_address(host)
    except ValueError:
        return  # a name: checked when it is resolved, at every delivery
    if not public:
        raise UnsafeDestination("The URL must name a public host.")


def resolve(host: str, port: int) -> str:
    """One checked address of `host`: every address it resolves to must be allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SendFailed(f"Could not resolve {host}.") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise SendFailed(f"Could not resolve {host}.")
    if not settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES:
        refused = [address for address in addresses if not is_public_address(address)]
        if refused:
            raise UnsafeDestination(f"{host} resolves to a private address ({refused[0]}).")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        # The certificate must be valid for the URL's host, whatever address we dialled.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(*, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST `body` to `url` and read the start of the answer; SendFailed when there is none."""
    check_url(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = resolve(host, port)
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(host, port, address=address, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    started = time.monotonic()
    try:
        connection.request(
            "POST",
            path,
            body=body,
            headers={
                **headers,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Content-Length": str(len(body)),
            },
        )
        response = connection.getresponse()
        excerpt = response.read(EXCERPT_BYTES)
    except (OSError, http.client.HTTPException) as exc:
        raise SendFailed(_describe(exc)) from exc
    finally:
        connection.close()
    duration_ms = round((time.monotonic() - started) * 1000)
    return Answer(
        status=response.status,
        excerpt=excerpt.decode("utf-8", errors="replace"),
        duration_ms=duration_ms,
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "No answer within the timeout."
    if isinstance(exc, ConnectionRefusedError):
        return "Connection refused."
    return f"{type(exc).__name__}: {exc}"[:300]
