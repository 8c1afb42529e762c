"""Where the CLI finds its server and token: flags, then ``EDGEFLEET_SERVER`` /
``EDGEFLEET_TOKEN``, then the file ``edgefleet login`` wrote (mode 0600)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgefleet.client import Client

DEFAULT_SERVER = "http://127.0.0.1:8400"


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "edgefleet" / "cli.json"


@dataclass
class Target:
    server: str | None = None
    token: str | None = None


# Filled by the main callback from --server / --token.
target = Target()


def load() -> dict[str, str]:
    try:
        data = json.loads(config_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save(server: str, token: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"server": server, "token": token}, handle, indent=2)
    os.replace(tmp, path)
    return path


def resolve() -> tuple[str, str | None]:
    stored = load()
    server = (
        target.server
        or os.environ.get("EDGEFLEET_SERVER")
        or stored.get("server")
        or DEFAULT_SERVER
    )
    token = target.token or os.environ.get("EDGEFLEET_TOKEN") or stored.get("token")
    return server.split(",")[0].rstrip("/"), token


def client() -> Client:
    from edgefleet.client.client import Client  # httpx: only verbs that call the API pay for it

    server, token = resolve()
    return Client(server, token)
