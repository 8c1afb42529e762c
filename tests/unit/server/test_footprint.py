"""What a server loads only on first use (issue 16: the idle server's RSS).

Checked in a fresh interpreter after the app is built (every route, the
portal, the middleware), i.e. everything ``edgefleet server`` imports before
serving. Each entry names what would bring it back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

NEVER_AT_START = {
    "alembic": "migrations run in a child process (server/db/migrate.py)",
    "mako": "alembic's templates",
    "numpy": "the fed aggregator, imported by Relay.launch",
    "nacl": "the fed aggregator's key agreement",
    "joserfc": "single sign-on's ID-token checks (auth/oidc_provider.py)",
    "cryptography": "sealing a secret (registries/crypto.py) or an ID-token check",
    "httpx": "single sign-on's client (auth/oidc_provider.py, built when configured) "
    "or the alert webhooks' (alerts/runner.py, made when a message is due)",
    "jinja2": "the portal's first page (portal/web.py templates())",
    "sqlalchemy.dialects.postgresql": "a PostgreSQL database (db/base.py JsonType, db/upsert.py)",
    "aiosqlite": "a SQLite database's engine (db/engine.py create_engine)",
    "sqlite3": "a SQLite database's engine (db/engine.py create_engine)",
    "rich": "httpx's command-line client (kept out by server/footprint.py)",
    "pygments": "httpx's command-line client (kept out by server/footprint.py)",
    "pydantic.v1": "FastAPI's pydantic-1 check of route parameters (server/footprint.py)",
    "watchfiles": "uvicorn's --reload file watcher (kept out by server/footprint.py)",
}

PROBE = """
import json, sys
from edgefleet.server.main import create_app  # what `edgefleet server` imports first
from edgefleet.server.settings import ServerSettings
create_app(ServerSettings(data_dir=sys.argv[1]))
print(json.dumps(sorted(name for name, module in sys.modules.items() if module is not None)))
"""


def test_building_the_app_loads_none_of_the_first_use_packages(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True, text=True, check=True
    )
    modules = set(json.loads(out.stdout.strip().splitlines()[-1]))
    loaded = modules | {name.split(".")[0] for name in modules}
    assert "fastapi" in loaded  # the probe did build the app
    early = {name: why for name, why in NEVER_AT_START.items() if name in loaded}
    assert early == {}


FALLBACK = """
from edgefleet.server import footprint
footprint.keep_out()
import uvicorn, uvicorn.supervisors
print(uvicorn.supervisors.ChangeReload.__name__)
"""


def test_uvicorn_without_its_file_watcher_takes_its_polling_reloader() -> None:
    """``watchfiles`` kept out: uvicorn still imports, with the fallback it has
    for an installation without it (the server never reloads)."""
    out = subprocess.run(
        [sys.executable, "-c", FALLBACK], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "StatReload"
