"""Where webhooks may point: the SSRF guard's decisions on real addresses."""

from __future__ import annotations

import ipaddress

import pytest

from edgefleet.server.alerts.guard import Allowlist, Refused


def ok(allow: Allowlist, host: str, address: str) -> bool:
    return allow.address_ok(host, ipaddress.ip_address(address))


def test_default_allows_public_only() -> None:
    allow = Allowlist("", loopback=False)
    assert ok(allow, "hooks.example.com", "93.184.216.34")
    for private in ("10.0.0.5", "192.168.1.1", "172.16.0.1", "127.0.0.1", "::1", "fd00::1"):
        assert not ok(allow, "x", private), private


def test_metadata_and_link_local_never_pass() -> None:
    allow = Allowlist("169.254.0.0/16, 0.0.0.0/0", loopback=True)
    assert not ok(allow, "x", "169.254.169.254")
    assert not ok(allow, "x", "0.0.0.0")


def test_loopback_only_when_enabled() -> None:
    assert not ok(Allowlist("127.0.0.1", loopback=False), "127.0.0.1", "127.0.0.1")
    assert ok(Allowlist("", loopback=True), "localhost", "127.0.0.1")


def test_allowlist_restricts_to_listed_hosts_and_cidrs() -> None:
    allow = Allowlist("hooks.example.com, 10.1.0.0/16", loopback=False)
    assert ok(allow, "hooks.example.com", "93.184.216.34")
    assert ok(allow, "internal", "10.1.2.3")
    assert not ok(allow, "other.example.com", "93.184.216.35")
    assert not ok(allow, "internal", "10.2.0.1")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "http:///nohost",
        "http://[",
        "http://[zz::1]/",
        "http://user:pw@example.com/",
        "http://h:99999/",
    ],
)
def test_url_shapes_refused(url: str) -> None:
    with pytest.raises(Refused):
        Allowlist("", loopback=False).check_url(url)


async def test_resolution_is_checked() -> None:
    with pytest.raises(Refused, match="not allowed"):
        await Allowlist("", loopback=False).check("http://localhost:9/hook")
    await Allowlist("", loopback=True).check("http://127.0.0.1:9/hook")
