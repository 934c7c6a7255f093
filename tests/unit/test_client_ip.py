"""The client's address: X-Forwarded-For only from a trusted proxy, read from the right."""

import pytest
from django.test import RequestFactory, override_settings

from project.client_ip import client_ip, scope_client_ip

rf = RequestFactory()


def _request(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return rf.get("/", **extra)


@override_settings(TRUSTED_PROXIES=[])
def test_without_trusted_proxies_the_header_is_ignored():
    assert client_ip(_request("203.0.113.7", "127.0.0.1")) == "203.0.113.7"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_header_from_an_untrusted_peer_is_ignored():
    assert client_ip(_request("198.51.100.9", "127.0.0.1, 10.0.0.1")) == "198.51.100.9"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_header_from_a_trusted_proxy_gives_the_right_most_untrusted_address():
    # The client wrote "127.0.0.1" itself; the proxy appended the address it really saw.
    request = _request("10.0.0.5", "127.0.0.1, 203.0.113.7")
    assert client_ip(request) == "203.0.113.7"


@override_settings(TRUSTED_PROXIES=["10.0.0.5", "10.0.1.0/24"])
def test_chains_of_trusted_proxies_are_skipped():
    request = _request("10.0.0.5", "1.1.1.1, 203.0.113.7, 10.0.1.20")
    assert client_ip(request) == "203.0.113.7"


@override_settings(TRUSTED_PROXIES=["10.0.0.5"])
def test_only_trusted_addresses_in_the_header_give_the_left_most():
    assert client_ip(_request("10.0.0.5", "10.0.0.5")) == "10.0.0.5"


@override_settings(TRUSTED_PROXIES=["10.0.0.5"])
def test_garbage_in_the_header_stops_at_the_last_trusted_hop():
    assert client_ip(_request("10.0.0.5", "1.2.3.4, not-an-ip")) == "10.0.0.5"


@override_settings(TRUSTED_PROXIES=["10.0.0.5"])
def test_trusted_proxy_without_header_is_the_client():
    assert client_ip(_request("10.0.0.5")) == "10.0.0.5"


@override_settings(TRUSTED_PROXIES=["nonsense", "", "10.0.0.0/33", "10.0.0.5"])
def test_invalid_trusted_proxy_entries_are_ignored():
    assert client_ip(_request("10.0.0.5", "203.0.113.7")) == "203.0.113.7"
    assert client_ip(_request("10.0.0.6", "203.0.113.7")) == "10.0.0.6"


@override_settings(TRUSTED_PROXIES=["10.0.0.5"])
@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("203.0.113.7:4711", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::2", "2001:db8::2"),
    ],
)
def test_addresses_with_ports_and_ipv6(entry, expected):
    assert client_ip(_request("10.0.0.5", entry)) == expected


@override_settings(TRUSTED_PROXIES=["::1"])
def test_ipv4_mapped_peer_is_normalised():
    assert client_ip(_request("::ffff:192.0.2.1")) == "192.0.2.1"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_scope_client_ip_honours_only_a_trusted_peer():
    headers = [(b"host", b"shop"), (b"x-forwarded-for", b"127.0.0.1, 203.0.113.7")]
    assert scope_client_ip({"client": ("10.2.3.4", 5555), "headers": headers}) == "203.0.113.7"
    assert scope_client_ip({"client": ("198.51.100.1", 5555), "headers": headers}) == "198.51.100.1"
    assert scope_client_ip({"headers": headers}) == ""
