"""Service networking keys: ``ports``, ``expose``, ``networks``, ``extra_hosts``, ``dns``."""

from __future__ import annotations

import ipaddress
from typing import Any

from edgefleet.spec import keys, units, values
from edgefleet.spec.draft import Draft, Handler
from edgefleet.spec.findings import Path
from edgefleet.spec.model import Port

_PUBLISHED = (
    "publishes port {port} on the device's own interfaces, which only devices whose policy "
    "allows it accept (the agent's --allow-published-ports); without a published port the "
    "service is still reachable through the proxy"
)


def ports(d: Draft, value: Any, path: Path) -> None:
    if not isinstance(value, list):
        d.report.invalid(path, f"expected a list of ports, not {values.kind(value)}")
        return
    for i, item in enumerate(value):
        item_path = (*path, i)
        if isinstance(item, dict):
            found = _long_port(d, item, item_path)
        elif isinstance(item, str | int) and not isinstance(item, bool):
            found = values.convert(d.report, str(item), item_path, _short_port(d, item_path))
        else:
            d.report.invalid(
                item_path, f'expected a port such as "8080:80", not {values.kind(item)}'
            )
            found = None
        for port in found or []:
            d.extend("ports", [port])
        published = sorted({p.published for p in found or [] if p.published is not None})
        if published:
            span = f"{published[0]}-{published[-1]}" if len(published) > 1 else f"{published[0]}"
            d.report.warn(item_path, _PUBLISHED.format(port=span))


def _short_port(d: Draft, path: Path) -> Any:
    def parse(text: str) -> list[Port]:
        spec, _, proto = text.strip().partition("/")
        protocol = _protocol(proto or "tcp")
        host_ip: str | None = None
        if spec.startswith("["):
            close = spec.find("]")
            if close < 0 or spec[close + 1 : close + 2] != ":":
                raise ValueError(f"{text!r} is not '[IPv6]:PUBLISHED:TARGET'")
            host_ip = spec[1:close]
            published, sep, target = spec[close + 2 :].rpartition(":")
            if not sep:
                raise ValueError(f"{text!r} is not '[IPv6]:PUBLISHED:TARGET'")
        else:
            parts = spec.rsplit(":", 2)
            target = parts[-1]
            published = parts[-2] if len(parts) > 1 else ""
            host_ip = parts[0] if len(parts) == 3 else None
        if host_ip is not None:
            _ip(host_ip)
        try:
            targets = units.parse_port_range(target)
            outside = units.parse_port_range(published) if published else []
        except ValueError as exc:
            raise ValueError(f"{text!r}: {exc}") from None
        if outside and len(outside) != len(targets):
            if len(targets) != 1:
                raise ValueError(
                    f"{text!r}: the published range and the container range differ in length"
                )
            d.report.warn(
                path, f"a published range for one port takes its first port, {outside[0]}"
            )
            outside = outside[:1]
        return [
            Port(
                target=t,
                published=outside[i] if outside else None,
                host_ip=host_ip,
                protocol=protocol,
            )
            for i, t in enumerate(targets)
        ]

    return parse


def _protocol(text: str) -> Any:
    protocol = text.lower()
    if protocol not in ("tcp", "udp"):
        raise ValueError(f"protocol {text!r} is not supported: use tcp or udp")
    return protocol


def _ip(text: object) -> str:
    if not isinstance(text, str):
        raise ValueError(f"expected an IP address, not {values.kind(text)}")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None
    return text


def _long_port(d: Draft, item: dict[str, Any], path: Path) -> list[Port] | None:
    report = d.report
    values.check_keys(report, item, path, keys.PORT_KEYS)
    if "target" not in item:
        report.error(path, "target is required: the port the service listens on")
        return None
    target = values.convert(report, item["target"], (*path, "target"), units.parse_port)
    published: int | None = None
    raw = item.get("published")
    if raw not in (None, ""):
        span = values.convert(report, raw, (*path, "published"), units.parse_port_range)
        if span and len(span) > 1:
            report.warn((*path, "published"), f"a published range takes its first port, {span[0]}")
        published = span[0] if span else None
    host_ip = None
    if item.get("host_ip") is not None:
        host_ip = values.convert(report, item["host_ip"], (*path, "host_ip"), _ip)
    protocol = values.convert(
        report, item.get("protocol", "tcp"), (*path, "protocol"), _text_protocol
    )
    name = None if item.get("name") is None else values.text(report, item["name"], (*path, "name"))
    mode = item.get("mode", "ingress")
    if mode not in ("ingress", "host"):
        report.invalid((*path, "mode"), f"mode must be host or ingress, not {mode!r}")
    if "app_protocol" in item:
        values.text(report, item["app_protocol"], (*path, "app_protocol"))
    if target is None or protocol is None:
        return None
    return [Port(target=target, published=published, host_ip=host_ip, protocol=protocol, name=name)]


def _text_protocol(value: object) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"protocol must be tcp or udp, not {values.kind(value)}")
    return _protocol(value)


def expose(d: Draft, value: Any, path: Path) -> None:
    if not isinstance(value, list):
        d.report.invalid(path, f"expected a list of ports, not {values.kind(value)}")
        return
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, str | int):
            d.report.invalid((*path, i), f"expected a port, not {values.kind(item)}")
            continue
        number, _, proto = str(item).partition("/")
        if proto and values.convert(d.report, proto, (*path, i), _protocol) is None:
            continue
        found = values.convert(d.report, number, (*path, i), units.parse_port_range)
        d.extend("expose", found or [])


def networks(d: Draft, value: Any, path: Path) -> None:
    attached: dict[str, list[str]] = {}
    if isinstance(value, list):
        for i, item in enumerate(value):
            name = values.text(d.report, item, (*path, i))
            if name is not None:
                attached[name] = []
                d.network_refs.append((name, (*path, i)))
    elif isinstance(value, dict):
        for name, options in value.items():
            net_path = (*path, name)
            d.network_refs.append((name, net_path))
            options = values.mapping(d.report, options, net_path)
            values.check_keys(d.report, options, net_path, keys.SERVICE_NETWORK_KEYS)
            aliases = values.string_list(
                d.report, options.get("aliases", []), (*net_path, "aliases")
            )
            attached[name] = aliases or []
            for key in ("ipv4_address", "ipv6_address", "link_local_ips", "mac_address"):
                if key in options:
                    d.report.warn(
                        (*net_path, key),
                        f"{key} is ignored: the job's private network assigns addresses",
                    )
            for key in ("driver_opts", "interface_name"):
                if key in options:
                    d.report.warn(
                        (*net_path, key), f"{key} is ignored: the agent sets up the job's networks"
                    )
    else:
        d.report.invalid(
            path, f"expected a list of network names or a mapping, not {values.kind(value)}"
        )
    d.set("networks", attached)


def extra_hosts(d: Draft, value: Any, path: Path) -> None:
    found: list[tuple[str, str, Path]] = []
    if isinstance(value, dict):
        for host, addresses in value.items():
            for address in values.string_list(d.report, addresses, (*path, host)) or []:
                found.append((host, address, (*path, host)))
    else:
        for i, entry in enumerate(values.string_list(d.report, value, path, single=False) or []):
            separator = "=" if "=" in entry else ":"
            host, sep, address = entry.partition(separator)
            if not sep or not host:
                d.report.invalid((*path, i), f"{entry!r} is not 'HOST:IP' or 'HOST=IP'")
                continue
            found.append((host, address, (*path, i)))
    for host, address, entry_path in found:
        address = address.strip().removeprefix("[").removesuffix("]")
        if address != "host-gateway" and values.convert(d.report, address, entry_path, _ip) is None:
            continue
        d.extend("extra_hosts", [f"{host}:{address}"])


def dns(d: Draft, value: Any, path: Path) -> None:
    servers = values.string_list(d.report, value, path) or []
    for i, server in enumerate(servers):
        at = (*path, i) if isinstance(value, list) else path
        if values.convert(d.report, server, at, _ip) is not None:
            d.extend("dns", [server])
    d.fields.setdefault("dns", [])


HANDLERS: dict[str, Handler] = {
    "ports": ports,
    "expose": expose,
    "networks": networks,
    "extra_hosts": extra_hosts,
    "dns": dns,
}
