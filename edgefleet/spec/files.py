"""Compose ``secrets:`` and ``configs:``: files a service finds in its container.

Top level, each object says where its content comes from on the server::

    secrets:  {db_password: {external: true}}        the project secret db_password
              {api: {external: true, name: token}}   the project secret token
    configs:  {app_conf: {external: true}}           the project variable app_conf
              {motd: {content: "hello"}}             inline

A service lists what it uses, in the short or long syntax::

    secrets: [db_password, {source: api, target: api_token, mode: 0400}]
    configs: [motd, {source: app_conf, target: /etc/app.conf}]

A secret lands at ``/run/secrets/<target>`` (a relative ``target`` is under
it), a config at ``/<name>`` or its absolute ``target``; both read-only. The
``file:`` and ``environment:`` sources of Compose read the machine running
Compose, which devices do not have, so they are refused with the way out.
Only the references are checked here; whether the project has such a secret
is checked by the server when a job is created.
"""

from __future__ import annotations

import posixpath
from typing import Any

from edgefleet.spec import values
from edgefleet.spec.draft import Draft
from edgefleet.spec.findings import Path, Report
from edgefleet.spec.model import FileRef, FileSource
from edgefleet.spec.mounts import NAME

SECRETS_DIR = "/run/secrets"
TOP_KEYS = frozenset(
    {"external", "name", "file", "environment", "content", "labels", "driver", "driver_opts",
     "template_driver"}
)  # fmt: skip
REF_KEYS = frozenset({"source", "target", "uid", "gid", "mode"})
_ON_SERVER = {
    "secrets": "create it as a project secret (`edgefleet secrets create NAME`) and write "
    "`external: true`",
    "configs": "set it as a project variable (`edgefleet variables set NAME`) and write "
    "`external: true`, or give the text under `content:`",
}


def sources(report: Report, value: Any, kind: str) -> dict[str, FileSource]:
    """Top-level ``secrets:`` (kind ``secrets``) or ``configs:``."""
    out: dict[str, FileSource] = {}
    for name, raw in values.mapping(report, value, (kind,)).items():
        at: Path = (kind, name)
        if not NAME.match(name):
            report.error(at, f"{name!r} is not a name: use letters, digits, _ . -")
            continue
        options = values.mapping(report, raw, at)
        values.check_keys(report, options, at, TOP_KEYS)
        for key in ("file", "environment"):
            if key in options:
                report.error(
                    (*at, key),
                    f"{key}: reads the machine running Compose, which devices do not have: "
                    + _ON_SERVER[kind],
                )
        for key in ("labels", "driver", "driver_opts", "template_driver"):
            if key in options:
                report.warn((*at, key), f"{key} is ignored: the server delivers {kind} itself")
        external = options.get("external", False) is True
        content = options.get("content")
        if kind == "secrets" and content is not None:
            report.error(
                (*at, "content"), "a secret's value does not belong in the Compose file: "
                + _ON_SERVER[kind]
            )  # fmt: skip
            continue
        if content is not None and not isinstance(content, str):
            report.invalid((*at, "content"), f"expected text, not {values.kind(content)}")
            continue
        if not external and content is None:
            if "file" not in options and "environment" not in options:
                report.error(at, f"where does {name} come from? " + _ON_SERVER[kind])
            continue
        real = values.text(report, options["name"], (*at, "name")) if "name" in options else None
        if real is not None and not NAME.match(real):
            report.invalid((*at, "name"), f"{real!r} is not a name: use letters, digits, _ . -")
            continue
        out[name] = FileSource(external=external, name=real or name, content=content)
    return out


def _mode(d: Draft, value: Any, path: Path) -> int | None:
    if isinstance(value, str):
        try:
            value = int(value, 8)
        except ValueError:
            d.report.invalid(path, f"mode {value!r} is not an octal number such as 0440")
            return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0o777:
        d.report.invalid(path, "mode is a permission number from 0 to 0777")
        return None
    return value


def _target(kind: str, source: str, target: str | None) -> str:
    if kind == "secrets":
        return posixpath.join(SECRETS_DIR, target or source)
    return target if target and target.startswith("/") else "/" + (target or source)


def _refs(d: Draft, value: Any, path: Path, kind: str) -> None:
    if d.fields.get("runtime") == "process":
        d.report.error(
            path,
            f"{kind} are delivered as files inside a container; a process service cannot "
            "receive them: run this service as a container (give it an image)",
        )
        return
    if not isinstance(value, list):
        d.report.invalid(path, f"expected a list of names or mappings, not {values.kind(value)}")
        return
    refs: list[FileRef] = []
    for i, item in enumerate(value):
        at = (*path, i)
        if isinstance(item, str):
            source, target, mode = item, None, None
        elif isinstance(item, dict):
            values.check_keys(d.report, item, at, REF_KEYS)
            source = values.text(d.report, item.get("source"), (*at, "source")) or ""
            if not source:
                d.report.invalid(at, f"source is required: the name of a top-level {kind} entry")
                continue
            target = (
                values.text(d.report, item["target"], (*at, "target")) if "target" in item else None
            )
            mode = _mode(d, item["mode"], (*at, "mode")) if "mode" in item else None
            for key in ("uid", "gid"):
                if key in item:
                    d.report.warn(
                        (*at, key), f"{key} is ignored: files belong to the engine's root"
                    )
        else:
            d.report.invalid(at, f"expected a name or a mapping, not {values.kind(item)}")
            continue
        if target is not None and (".." in target.split("/") or not target.strip("/")):
            d.report.invalid((*at, "target"), f"target {target!r} must name a file, without '..'")
            continue
        d.file_refs.append((kind, source, at))
        refs.append(FileRef(source=source, target=_target(kind, source, target), mode=mode))
    targets = [r.target for r in refs]
    if len(set(targets)) != len(targets):
        d.report.invalid(path, f"two {kind} land on the same file; give each its own target")
    d.set(kind, refs)


def secrets(d: Draft, value: Any, path: Path) -> None:
    _refs(d, value, path, "secrets")


def configs(d: Draft, value: Any, path: Path) -> None:
    _refs(d, value, path, "configs")


HANDLERS = {"secrets": secrets, "configs": configs}


def check_references(
    report: Report, drafts: list[Draft], declared: dict[str, dict[str, FileSource]]
) -> None:
    """Every name a service uses must be declared at the top level."""
    for draft in drafts:
        for kind, source, at in draft.file_refs:
            if source not in declared[kind]:
                report.invalid(
                    at,
                    f"{kind[:-1]} {source!r} is not declared: add `{kind}: {{{source}: "
                    "{external: true}}` at the top level",
                )
