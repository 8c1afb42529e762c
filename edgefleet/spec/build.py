"""Compose ``build:``: accepted only when the version was uploaded with a build context.

A device has no checkout of the application's sources, so ``build:`` means
something only when the server holds the context tar the version was
uploaded with (``edgefleet apps create … --context DIR``). Then each target
device fetches that tar over its authenticated connection and builds the
image with its own engine. The context path inside the tar and the
Dockerfile must stay inside it: no absolute paths, no ``..``.
"""

from __future__ import annotations

import posixpath
from typing import Any

from edgefleet.spec import keys, values
from edgefleet.spec.draft import Draft
from edgefleet.spec.findings import Path
from edgefleet.spec.model import Build

BUILD_KEYS = frozenset({"context", "dockerfile", "args", "target"})


def _inside(d: Draft, text: str | None, path: Path, what: str) -> str | None:
    if text is None:
        return None
    normal = posixpath.normpath(text)
    if text.startswith("/") or normal == ".." or normal.startswith("../"):
        d.report.invalid(path, f"{what} {text!r} must be a path inside the uploaded build context")
        return None
    return normal


def _text(d: Draft, value: dict[str, Any], key: str, path: Path) -> str | None:
    if value.get(key) is None:
        return None
    return values.text(d.report, value[key], (*path, key))


def build(d: Draft, value: Any, path: Path) -> None:
    """Read ``build:`` (a string, or ``{context, dockerfile, args, target}``)."""
    if not d.report.builds:
        d.report.error(path, keys.REFUSED_SERVICE_KEYS["build"])
        return
    if d.fields.get("runtime") == "process":
        d.report.error(
            path, "a process service runs a program on the device: it has no image to build"
        )
        return
    if isinstance(value, str):
        context = _inside(d, value, path, "context")
        if context is not None:
            d.set("build", Build(context=context))
        return
    if not isinstance(value, dict):
        d.report.invalid(path, f"build is a context path or a mapping, not {values.kind(value)}")
        return
    for key in value:
        if key not in BUILD_KEYS:
            d.report.error(
                (*path, key),
                f"build.{key} is not supported on devices; use {', '.join(sorted(BUILD_KEYS))}",
            )
    context = _inside(d, _text(d, value, "context", path) or ".", (*path, "context"), "context")
    dockerfile = _inside(
        d, _text(d, value, "dockerfile", path), (*path, "dockerfile"), "dockerfile"
    )
    target = _text(d, value, "target", path)
    args: dict[str, str] = {}
    raw_args = value.get("args") or {}
    if isinstance(raw_args, list):
        raw_args = dict(str(a).partition("=")[::2] for a in raw_args)
    if not isinstance(raw_args, dict):
        d.report.invalid((*path, "args"), "build.args is a mapping or a list of NAME=value")
    else:
        args = {str(k): "" if v is None else str(v) for k, v in raw_args.items()}
    if context is not None:
        d.set("build", Build(context=context, dockerfile=dockerfile, args=args, target=target))
