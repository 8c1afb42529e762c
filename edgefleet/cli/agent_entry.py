"""``edgefleet agent ...`` with only what the agent needs loaded.

The daemon runs in a second, lean interpreter (issue 18's target: an idle
agent within 40 MB RSS; 39.1 MB measured with an http:// server, 2026-12-01).
Typer, the CLI's settings plumbing and the sub-verbs' modules cost the agent
2-3 MB it would carry for months, so the first process only parses and
validates the flags, then ``exec``s the same command line (same pid, nothing
to supervise twice) with the validated settings in :data:`SETTINGS_ENV`; that
process reads them back here without importing Typer at all.

The hand-off also sets ``MALLOC_ARENA_MAX=2`` unless the environment already
chooses: glibc otherwise gives every thread that allocates (the asyncio
executor, SQLite writers) its own arena, which a long-running agent keeps as
resident memory. Two arenas are plenty for one event loop and a few threads.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
import types
import warnings
from typing import Any

from edgefleet.cli.handoff import SETTINGS_ENV  # written by handoff.exec_lean

__all__ = ["SETTINGS_ENV", "defer", "main"]


# Imported by the agent's dependencies or modules for rare work (enrollment,
# upgrades, builds), but used only then: they load on first use instead.
# urllib.request brings http.client (~0.6 MB in the daemon). pydantic imports
# secrets (for SecretStr's comparison), which loads hmac, hashlib and with them
# OpenSSL's libcrypto (~3.4 MB RSS, mostly pages shared with other processes);
# an idle agent hashes nothing, so they load with the first deploy, data
# request or upgrade (the first start loads them too: it makes the data secret).
# pickle (with _pickle) serves only logging.handlers' socket handlers;
# tempfile and urllib.error (with urllib.response) only device-side builds.
# bz2 and lzma are imported by shutil only to learn that they exist (for its
# archive formats); tarfile uses them for a compressed build context. Both with
# their C modules and libbz2/liblzma: ~0.3 MB RSS of the idle agent.
# locale (with _locale) is imported by subprocess for the encoding of a text
# mode pipe; the agent's own children are spoken to in bytes.
DEFERRED = (
    "urllib.request",
    "urllib.error",
    "secrets",
    "hmac",
    "hashlib",
    "pickle",
    "tempfile",
    "bz2",
    "lzma",
    "locale",
)


# Never loaded by the daemon: requests (under the docker SDK) uses a charset
# detector only to guess the encoding of a text answer that declares none, and
# falls back to UTF-8 without one, which is what the engine API speaks. The
# detector costs ~2 MB with the docker runtime.
BLOCKED = ("charset_normalizer", "chardet")


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its names is used, then imports the
    real module and becomes a copy of it. (The stdlib's LazyLoader does not do:
    the import statement itself reads ``__spec__``, which loads the module.)"""

    def __getattr__(self, attr: str) -> Any:
        with _LOADING:  # another thread may be importing it (hashlib in executor threads)
            real = sys.modules.get(self.__name__)
            if real is self or real is None:
                sys.modules.pop(self.__name__, None)
                real = importlib.import_module(self.__name__)
            self.__dict__.update(real.__dict__)
        return getattr(real, attr)


_LOADING = threading.RLock()  # re-entrant: loading secrets loads hmac, then hashlib


def defer(name: str) -> None:
    """Register ``name`` so it is imported on first use; a no-op if it already is."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    stub = _Deferred(name)
    stub.__spec__ = spec
    sys.modules[name] = stub
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, stub)


def _run_lean(raw: str) -> None:
    from edgefleet.agent.footprint import asyncio_without_ssl, skip_plugin_lookup

    skip_plugin_lookup()
    for name in DEFERRED:
        defer(name)
    for name in BLOCKED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    warnings.filterwarnings("ignore", "Unable to find acceptable character detection")
    from pydantic import ValidationError

    from edgefleet.agent.settings import AgentSettings

    try:
        settings = AgentSettings.model_validate_json(raw)
    except ValidationError as exc:  # written by exec_lean from valid settings: a bug
        print(f"edgefleet agent: bad hand-off settings: {exc}", file=sys.stderr)
        sys.exit(2)
    asyncio_without_ssl(settings.server)  # before the agent imports asyncio
    from edgefleet.agent.main import run
    from edgefleet.cli.handoff import exec_lean

    sys.exit(run(settings, start_again=lambda: exec_lean(settings)))


def main() -> None:
    raw = os.environ.pop(SETTINGS_ENV, None)
    if raw is not None:
        _run_lean(raw)
        return
    import typer

    from edgefleet.cli.processes import register_agent

    app = typer.Typer(
        name="edgefleet", pretty_exceptions_enable=False, add_completion=False, no_args_is_help=True
    )

    @app.callback()
    def root() -> None:
        """edgefleet: the device daemon."""

    register_agent(app)
    app(prog_name="edgefleet")
