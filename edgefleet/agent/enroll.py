"""First start: trade a provisioning key for a device identity.

Uses the standard library's HTTP client on purpose: the agent must stay
small (an idle agent under 40 MB), and this runs once in its life.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from edgefleet.agent.errors import EnrollmentRefused, ServerUnreachable
from edgefleet.agent.state import Identity
from edgefleet.wire.messages import DeviceFacts

if TYPE_CHECKING:  # ssl loads only for an https server (agent/footprint.py)
    import ssl


def http_base(url: str) -> str:
    if url.startswith("ws://"):
        return "http://" + url[5:]
    if url.startswith("wss://"):
        return "https://" + url[6:]
    return url


def _post(url: str, body: dict[str, Any], context: ssl.SSLContext | None) -> dict[str, Any]:
    import urllib.error  # only on first start: urllib pulls in the email package
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", exc.reason)
        except ValueError:
            detail = exc.reason
        if isinstance(detail, list):
            detail = "; ".join(str(d.get("msg", d)) for d in detail)
        if exc.code in (400, 401, 403, 404, 409, 422):
            raise EnrollmentRefused(f"the server refused enrollment: {detail}") from exc
        raise ServerUnreachable(f"enrollment failed with HTTP {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ServerUnreachable(f"cannot reach {url}: {exc}") from exc


async def enroll(
    servers: list[str],
    key: str,
    *,
    name: str | None,
    labels: dict[str, str],
    facts: DeviceFacts,
    public_key: str | None,
    context: ssl.SSLContext | None,
) -> Identity:
    body = {
        "provisioning_key": key,
        "name": name,
        "labels": labels,
        "facts": facts.model_dump(mode="json"),
        "public_key": public_key,
    }
    last: ServerUnreachable | None = None
    for server in servers:
        try:
            answer = await asyncio.to_thread(
                _post, f"{http_base(server)}/api/v1/agent/enroll", body, context
            )
        except ServerUnreachable as exc:
            last = exc
            continue
        return Identity(
            device_id=answer["device_id"],
            credential=answer["credential"],
            name=answer["name"],
            project=answer["project"],
            servers=servers,
        )
    # Settings refuse an empty server list; this names the fault even so (an
    # assert would vanish under -OO).
    raise last or ServerUnreachable("no server to enroll with")
