"""What the agent process keeps from loading before anything else runs.

Called by the lean entry (cli/agent_entry.py) first thing, because what is
imported once stays in an agent's memory for months (issue 18: an idle agent
within 40 MB RSS). Each step only skips work whose result is known in advance;
none changes what the agent can do:

- pydantic looks for plugins through ``importlib.metadata`` (which brings
  ``email``, ``zipfile``, ``csv``: about 1 MB) the first time a model is built,
  even when ``PYDANTIC_DISABLE_PLUGINS`` (set for the agent by cli/__init__.py)
  tells it to load none. With that variable set, its plugin loader is replaced
  by one giving the same answer, no plugins; any other name of that module
  still loads the real one.
- asyncio imports ``ssl`` (libssl, ``_ssl`` and the ssl module's enums: about
  2.5 MB) whether or not a TLS connection is ever made. An agent whose servers
  are all plain ``http://`` makes none through asyncio (the WebSocket is its
  only asyncio TLS user; enrollment, upgrades, builds and the docker SDK speak
  HTTP through urllib or requests, which import ``ssl`` themselves when they
  need it), so asyncio is imported with ``ssl`` hidden; ``ssl`` stays
  importable for everyone else. With an https server nothing changes.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from collections.abc import Iterable

PLUGIN_LOADER = "pydantic.plugin._loader"
_DISABLED = ("__all__", "1", "true")  # the values pydantic reads as "no plugins at all"


class _NoPlugins(types.ModuleType):
    """pydantic's plugin loader when plugins are disabled: no plugins, no lookup."""

    @staticmethod
    def get_plugins() -> tuple[()]:
        return ()

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):  # asked by the import system (``__path__``): a plain module
            raise AttributeError(name)
        # A name a newer pydantic needs from its loader: hand over to the real one.
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def skip_plugin_lookup() -> bool:
    """Stand in for pydantic's plugin loader when plugins are disabled; True if it did."""
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") not in _DISABLED:
        return False
    if PLUGIN_LOADER in sys.modules:
        return False
    sys.modules[PLUGIN_LOADER] = _NoPlugins(PLUGIN_LOADER)
    return True


def asyncio_without_ssl(servers: Iterable[str]) -> bool:
    """Import asyncio without its TLS support when every server is plain http
    (asyncio falls back to that itself on a Python built without ssl); True if
    it did. Must run before anything imports asyncio."""
    urls = list(servers)
    if not urls or not all(url.startswith(("http://", "ws://")) for url in urls):
        return False
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return False
    sys.modules["ssl"] = None  # type: ignore[assignment]  # asyncio: `except ImportError: ssl = None`
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]
    return True
