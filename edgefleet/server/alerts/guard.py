"""Where webhooks may point (SSRF guard).

A webhook makes the server send requests on a project member's behalf, so
its URL is checked against ``--alert-webhook-allow`` (hosts and CIDRs) at
creation *and* at every delivery (a name may resolve elsewhere later):

- a host named in the allowlist, or an address inside a listed CIDR, passes;
- otherwise, with an empty allowlist, only public addresses pass;
- loopback passes only with ``--alert-webhook-allow-loopback``;
- link-local (cloud metadata at 169.254.169.254), unspecified and multicast never pass.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(ValueError):
    """The URL may not be used; the message says why."""


class Allowlist:
    def __init__(self, spec: str, loopback: bool) -> None:
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.loopback = loopback
        for item in (part.strip().lower() for part in spec.split(",")):
            if not item:
                continue
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.hosts.add(item)
        self.restricted = bool(self.hosts or self.networks)

    def check_url(self, url: str) -> tuple[str, int]:
        """Shape only: http(s), a host, no credentials. Returns (host, port)."""
        try:
            parts = urlsplit(url)
            hostname = parts.hostname
        except ValueError as exc:  # "http://[" and friends
            raise Refused("is not a valid URL") from exc
        if parts.scheme not in ("http", "https"):
            raise Refused("must be an http:// or https:// URL")
        if not hostname:
            raise Refused("has no host")
        if parts.username or parts.password:
            raise Refused("must not carry credentials")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise Refused("has an invalid port") from exc
        return hostname.lower(), port

    def address_ok(self, host: str, address: IP) -> bool:
        if address.is_link_local or address.is_unspecified or address.is_multicast:
            return False
        if address.is_loopback:
            return self.loopback
        if host in self.hosts or any(address in net for net in self.networks):
            return True
        if self.restricted:
            return False
        return address.is_global

    async def check(self, url: str) -> None:
        """Raise :class:`Refused` unless every address the URL's host resolves to passes."""
        host, port = self.check_url(url)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:
            raise Refused(f"host {host!r} does not resolve") from exc
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
        bad = sorted(str(a) for a in addresses if not self.address_ok(host, a))
        if bad or not addresses:
            raise Refused(
                f"host {host!r} ({', '.join(bad) or 'no address'}) is not allowed by "
                "--alert-webhook-allow"
            )
