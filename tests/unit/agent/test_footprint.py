"""What the agent keeps from loading (agent/footprint.py), each in a fresh
interpreter: the skipped work is skipped, and what it stood for still works."""

from __future__ import annotations

import subprocess
import sys

from tests.support.procs import base_env


def _run(script: str, **env: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=base_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


PLUGINS = """
import sys
from edgefleet.agent import footprint
print(footprint.skip_plugin_lookup())
from pydantic import BaseModel
class M(BaseModel):
    n: int
print(M(n="3").n, "importlib.metadata" in sys.modules)
from pydantic.plugin import _loader
print(_loader.get_plugins() == (), "importlib.metadata" in sys.modules)
print(_loader.PYDANTIC_ENTRY_POINT_GROUP, "importlib.metadata" in sys.modules)
"""


def test_disabled_plugins_are_not_looked_up_and_the_loader_stays_whole() -> None:
    lines = _run(PLUGINS, PYDANTIC_DISABLE_PLUGINS="__all__")
    # Models build and validate without importlib.metadata; another name of the
    # loader module (a newer pydantic's) still comes from the real module.
    assert lines == ["True", "3", "False", "True", "False", "pydantic", "True"]


def test_plugins_are_looked_up_as_usual_unless_disabled() -> None:
    assert _run(PLUGINS, PYDANTIC_DISABLE_PLUGINS="")[:3] == ["False", "3", "True"]


SSL = """
import sys
from edgefleet.agent import footprint
print(footprint.asyncio_without_ssl(sys.argv[1:] or {servers!r}))
import asyncio
print("ssl" in sys.modules, asyncio.sslproto.ssl is None)
async def echo():
    server = await asyncio.start_server(lambda r, w: (w.write(b"ok"), w.close()), "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
    print((await reader.read()).decode())
    writer.close()
    server.close()
asyncio.run(echo())
import ssl, urllib.request
print(ssl.create_default_context().verify_mode == ssl.CERT_REQUIRED, hasattr(urllib.request, "HTTPSHandler"))
"""


def test_an_http_only_agent_imports_asyncio_without_ssl_and_ssl_still_works() -> None:
    lines = _run(SSL.format(servers=["http://a:8400", "http://b:8400"]))
    assert lines == ["True", "False", "True", "ok", "True", "True"]


def test_with_an_https_server_asyncio_keeps_its_tls() -> None:
    lines = _run(SSL.format(servers=["http://a:8400", "https://b"]))
    assert lines == ["False", "True", "False", "ok", "True", "True"]
    assert _run(SSL.format(servers=[]))[:3] == ["False", "True", "False"]
