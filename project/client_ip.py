"""The client's address, proxy-aware only where a proxy is trusted.

`X-Forwarded-For` is written by whoever sends the request, so it is read only when the
direct peer (REMOTE_ADDR, or the ASGI scope's client) is one of settings.TRUSTED_PROXIES.
Each trusted proxy appends the address it received the request from, so the header is read
from the right: the first address that is not itself a trusted proxy is the client. Entries
to its left were written by the client (or by proxies we do not know) and are never used.
With no trusted proxies configured (the default) the client is the direct peer.
"""

import ipaddress
import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            logger.warning(
                "TRUSTED_PROXIES entry %r is not an IP address or network; ignored", entry
            )
    return tuple(networks)


def trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(str(entry) for entry in getattr(settings, "TRUSTED_PROXIES", ())))


def _parse(value: str) -> Address | None:
    """An address as a proxy may write it: bare, "[v6]:port" or "v4:port"; None if garbage."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


def resolve(peer: str, forwarded_for: str) -> str:
    """The client address given the direct peer and the (comma-joined) X-Forwarded-For value."""
    peer_address = _parse(peer) if peer else None
    if peer_address is None:
        return peer.strip() if peer else ""
    networks = trusted_networks()
    if not networks or not _is_trusted(peer_address, networks) or not forwarded_for:
        return str(peer_address)
    client = peer_address
    for entry in reversed(forwarded_for.split(",")):
        address = _parse(entry)
        if address is None:
            # Not an address: the hop to its right (a trusted proxy) is the best we know.
            break
        client = address
        if not _is_trusted(address, networks):
            break
    return str(client)


def client_ip(request: HttpRequest) -> str:
    """The client's address for an HTTP request ("" when the server gave none)."""
    return resolve(
        request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR", "")
    )


def scope_client_ip(scope: Mapping[str, Any]) -> str:
    """The client's address for an ASGI scope (HTTP or websocket)."""
    client = scope.get("client") or ("", 0)
    peer = str(client[0] or "")
    forwarded = [
        value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name.lower() == b"x-forwarded-for"
    ]
    return resolve(peer, ",".join(forwarded))
