"""Modules the server process never needs, kept out before the app is built.

What the server imports stays resident for as long as it runs (issue 16: the
idle server's RSS). Two libraries import, as a side effect of their own
import, modules whose only users are paths the server never takes; the
import system's own "not available" marker (``None`` in ``sys.modules``)
makes each library take the fallback it already has for an installation
without them:

- ``httpx`` imports its command-line client (``httpx._main``: Click, Rich and
  Pygments, ~5 MB) whenever those are installed, to offer ``httpx.main``; the
  server uses httpx as a library only (single sign-on, webhooks). httpx
  catches the ImportError and defines ``main`` as a stub that says so.
- FastAPI imports ``pydantic.v1`` (~1.5 MB) to ask, of every route parameter,
  whether it is a pydantic-1 model; with no ``pydantic.v1`` it answers "no",
  which is right: the server declares pydantic-2 models only.
- ``uvicorn`` imports its reloader's file watcher (``watchfiles``: a Rust
  extension, anyio's threads; ~0.6 MB resident) on ``import uvicorn``, to
  offer ``--reload``; the server never reloads. uvicorn catches the
  ImportError and offers its polling reloader instead.

Nothing the server serves changes; a module already imported is left alone.
"""

from __future__ import annotations

import sys

UNUSED = ("httpx._main", "pydantic.v1", "watchfiles")
"""Module names the server never uses, with the library that would load them
as a side effect (see the module docstring)."""


def keep_out() -> list[str]:
    """Mark :data:`UNUSED` as unavailable unless already imported; returns the
    names it marked. Call before the app's modules are imported."""
    marked = []
    for name in UNUSED:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]  # "not available"
            marked.append(name)
    return marked
