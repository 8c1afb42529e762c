"""Where an app lives in the browser: its own origin, never the portal's.

A page's script runs with the rights of its origin. Served from the portal's
origin, an app's script could read the portal (its CSRF token) and act as the
visitor, an admin included; so every app gets an origin of its own,
``<job>-<device>-<service>-<port>.<apps-domain>``, and path mode on the portal
host (``/proxy/…``) sends browsers there (see :mod:`routes`). Pure functions,
tested without a server.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from edgefleet.server.settings import ServerSettings

_HOST_SAFE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
MAX_LABEL = 63  # DNS: one label of a host name


def label(job: str, device: str, service: str, port: int) -> str:
    return f"{job}-{device}-{service}-{port}"


def host_safe(job: str, device: str, service: str, port: int) -> bool:
    """Whether the route can be spelled as one host-name label browsers keep as is
    (they lowercase host names, so ``Web`` or ``my_svc`` would not come back)."""
    name = label(job, device, service, port)
    return len(name) <= MAX_LABEL and _HOST_SAFE.match(name) is not None


def app_origin(
    settings: ServerSettings, job: str, device: str, service: str, port: int
) -> str | None:
    """``scheme://<label>.<apps-domain>[:port]`` (scheme and port of the server's
    public URL), or None when apps have no host of their own (path mode only)."""
    domain = settings.resolved_apps_domain()
    if domain is None or not host_safe(job, device, service, port):
        return None
    public = urlsplit(settings.resolved_public_url())
    scheme = public.scheme or "http"
    default = {"http": 80, "https": 443}.get(scheme)
    suffix = f":{public.port}" if public.port and public.port != default else ""
    return f"{scheme}://{label(job, device, service, port)}.{domain}{suffix}"


def app_url(settings: ServerSettings, job: str, device: str, service: str, port: int) -> str:
    """The link to open an app: its own origin, else the path on the portal host."""
    origin = app_origin(settings, job, device, service, port)
    if origin is None:
        return f"/proxy/{job}/{device}/{service}/{port}/"
    return origin + "/"


def same_origin(origin: str, host: str) -> bool:
    """Whether a browser's ``Origin`` header names the host it is talking to
    (``null``, from a sandboxed page, never does)."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    default = {"http": 80, "https": 443}[parts.scheme]
    try:
        port = parts.port or default
    except ValueError:
        return False
    return _netloc(parts.hostname, port) == _host_netloc(host, default)


def _host_netloc(host: str, default: int) -> str:
    parts = urlsplit("//" + host.strip())
    try:
        port = parts.port
    except ValueError:
        return ""
    return _netloc(parts.hostname or "", port or default)


def _netloc(hostname: str, port: int) -> str:
    return f"{hostname.lower().rstrip('.')}:{port}"
