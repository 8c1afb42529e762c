"""Service storage keys: ``volumes`` (short and long syntax), ``tmpfs``, ``devices``."""

from __future__ import annotations

import re
from typing import Any

from edgefleet.spec import keys, units, values
from edgefleet.spec.draft import Draft, Handler
from edgefleet.spec.findings import Path
from edgefleet.spec.model import Mount

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_VOLUME_MODES = frozenset(
    {
        "ro",
        "rw",
        "z",
        "Z",
        "consistent",
        "cached",
        "delegated",
        "nocopy",
        "copy",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "private",
        "rprivate",
    }
)
_DEVICE_PERMISSIONS = re.compile(r"^[rwm]{1,3}$")


def volumes(d: Draft, value: Any, path: Path) -> None:
    if not isinstance(value, list):
        d.report.invalid(path, f"expected a list of mounts, not {values.kind(value)}")
        return
    for i, item in enumerate(value):
        item_path = (*path, i)
        if isinstance(item, str):
            mount = _short_volume(d, item, item_path)
        elif isinstance(item, dict):
            mount = _long_volume(d, item, item_path)
        else:
            d.report.invalid(
                item_path, f"expected 'SOURCE:TARGET[:ro]' or a mapping, not {values.kind(item)}"
            )
            mount = None
        if mount is not None:
            d.extend("volumes", [mount])


def _short_volume(d: Draft, text: str, path: Path) -> Mount | None:
    parts = text.split(":")
    if len(parts) > 3 or any(not p for p in parts):
        d.report.invalid(path, f"{text!r} is not 'SOURCE:TARGET[:MODE]' or a container path")
        return None
    source = parts[0] if len(parts) > 1 else None
    target = parts[1] if len(parts) > 1 else parts[0]
    options = parts[2].split(",") if len(parts) == 3 else []
    unknown = [o for o in options if o not in _VOLUME_MODES]
    if unknown:
        d.report.invalid(path, f"unknown mount option {unknown[0]!r}; use ro or rw")
        return None
    return _mount(d, path, source, target, read_only="ro" in options)


def _mount(
    d: Draft, path: Path, source: str | None, target: str, *, read_only: bool
) -> Mount | None:
    if not target.startswith("/"):
        d.report.invalid(path, f"the container path {target!r} must be absolute (start with /)")
        return None
    if source is None:
        return Mount(type="volume", target=target, read_only=read_only)
    if source.startswith(("/", ".", "~")):
        _host_path_warning(d, path, source)
        return Mount(type="bind", source=source, target=target, read_only=read_only)
    if not NAME.match(source):
        d.report.invalid(path, f"{source!r} is not a volume name (letters, digits, _ . -)")
        return None
    d.volume_refs.append((source, path))
    return Mount(type="volume", source=source, target=target, read_only=read_only)


def _host_path_warning(d: Draft, path: Path, source: str) -> None:
    where = (
        " It is relative, and a device reads it from the agent's working directory, not "
        "next to this file."
        if source.startswith((".", "~"))
        else ""
    )
    d.report.warn(
        path,
        f"{source} is a path on the device: devices refuse host paths their policy does not "
        f"allow (the agent's --allow-host-path).{where} A named volume works on every device.",
    )


def _long_volume(d: Draft, item: dict[str, Any], path: Path) -> Mount | None:
    values.check_keys(d.report, item, path, keys.VOLUME_KEYS)
    kind = item.get("type")
    if kind is None:
        d.report.error((*path, "type"), "type is required: volume, bind or tmpfs")
        return None
    if kind in ("npipe", "cluster", "image"):
        d.report.error(
            (*path, "type"), f"type {kind} is not supported on devices; use volume, bind or tmpfs"
        )
        return None
    if kind not in ("volume", "bind", "tmpfs"):
        d.report.invalid((*path, "type"), f"type must be volume, bind or tmpfs, not {kind!r}")
        return None
    target = values.text(d.report, item.get("target"), (*path, "target"))
    source = item.get("source")
    if source is not None:
        source = values.text(d.report, source, (*path, "source"))
    read_only = values.convert(
        d.report, item.get("read_only", False), (*path, "read_only"), units.parse_bool
    )
    for sub, allowed in (
        ("bind", keys.VOLUME_BIND_KEYS),
        ("volume", keys.VOLUME_VOLUME_KEYS),
        ("tmpfs", keys.VOLUME_TMPFS_KEYS),
    ):
        if sub in item:
            options = values.mapping(d.report, item[sub], (*path, sub))
            values.check_keys(d.report, options, (*path, sub), allowed, extensions=False)
    if isinstance(item.get("volume"), dict) and "subpath" in item["volume"]:
        d.report.error(
            (*path, "volume", "subpath"),
            "mounting part of a volume is not supported; mount the whole volume",
        )
    if target is None:
        return None
    if kind == "tmpfs":
        if source:
            d.report.error((*path, "source"), "a tmpfs mount has no source; remove it")
        raw_tmpfs = item.get("tmpfs")
        tmpfs: dict[str, Any] = raw_tmpfs if isinstance(raw_tmpfs, dict) else {}
        return _tmpfs(d, path, target, tmpfs.get("size"), tmpfs.get("mode"), bool(read_only))
    if kind == "bind" and not source:
        d.report.invalid((*path, "source"), "a bind mount needs a source: the path on the device")
        return None
    if kind == "volume" and source and source.startswith(("/", ".", "~")):
        d.report.invalid((*path, "source"), f"{source!r} is a path: use type: bind for host paths")
        return None
    if kind == "bind":
        assert source is not None
        if not target.startswith("/"):
            d.report.invalid((*path, "target"), f"the container path {target!r} must be absolute")
            return None
        _host_path_warning(d, path, source)
        return Mount(type="bind", source=source, target=target, read_only=bool(read_only))
    return _mount(d, path, source or None, target, read_only=bool(read_only))


def _tmpfs(
    d: Draft, path: Path, target: str, size: object, mode: object, read_only: bool
) -> Mount | None:
    if not target.startswith("/"):
        d.report.invalid(path, f"the container path {target!r} must be absolute (start with /)")
        return None
    size_bytes = None if size is None else values.convert(d.report, size, path, units.parse_size)
    mode_bits = None if mode is None else values.convert(d.report, mode, path, _parse_mode)
    return Mount(
        type="tmpfs",
        target=target,
        read_only=read_only,
        tmpfs_size=size_bytes,
        tmpfs_mode=mode_bits,
    )


def _parse_mode(value: object) -> int:
    """File mode bits: an int (YAML reads ``01777`` as octal) or an octal string."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o7777:
        return value
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{1,4}|0o[0-7]{1,4}", value.strip()):
        return int(value.strip().removeprefix("0o"), 8)
    raise ValueError(f"{value!r} is not a file mode; write it in octal, e.g. 1777")


def tmpfs(d: Draft, value: Any, path: Path) -> None:
    entries = values.string_list(d.report, value, path)
    for i, entry in enumerate(entries or []):
        entry_path = (*path, i) if isinstance(value, list) else path
        target, _, options = entry.partition(":")
        size: str | None = None
        mode: str | None = None
        read_only = False
        for option in filter(None, options.split(",")):
            name, _, setting = option.partition("=")
            if name == "size":
                size = setting
            elif name == "mode":
                mode = setting
            elif name in ("ro", "rw"):
                read_only = name == "ro"
            else:
                d.report.warn(
                    entry_path,
                    f"tmpfs option {name!r} is ignored: only size, mode and ro apply on devices",
                )
        mount = _tmpfs(d, entry_path, target, size, mode, read_only)
        if mount is not None:
            d.extend("volumes", [mount])


def devices(d: Draft, value: Any, path: Path) -> None:
    if not isinstance(value, list):
        d.report.invalid(path, f"expected a list of devices, not {values.kind(value)}")
        return
    for i, item in enumerate(value):
        item_path = (*path, i)
        if isinstance(item, dict):
            values.check_keys(d.report, item, item_path, {"source", "target", "permissions"})
            parts = [str(item.get(k)) for k in ("source", "target", "permissions") if item.get(k)]
        elif isinstance(item, str):
            parts = item.split(":")
        else:
            d.report.invalid(
                item_path, f"expected '/dev/HOST[:/dev/CONTAINER[:rwm]]', not {values.kind(item)}"
            )
            continue
        if parts and "=" in parts[0] and not parts[0].startswith("/"):
            d.report.invalid(
                item_path,
                f"{item!r} is a CDI device name, which is not supported; give the device path, e.g. /dev/video0",
            )
            continue
        if len(parts) == 2 and _DEVICE_PERMISSIONS.match(parts[1]):
            parts = [parts[0], parts[0], parts[1]]
        if not 1 <= len(parts) <= 3 or not all(p.startswith("/") for p in parts[:2]):
            d.report.invalid(item_path, f"{item!r} is not '/dev/HOST[:/dev/CONTAINER[:rwm]]'")
            continue
        if len(parts) == 3 and not _DEVICE_PERMISSIONS.match(parts[2]):
            d.report.invalid(item_path, f"device permissions {parts[2]!r} must be letters from rwm")
            continue
        if len(parts) == 1:
            parts.append(parts[0])
        d.extend("devices", [":".join(parts)])


HANDLERS: dict[str, Handler] = {"volumes": volumes, "tmpfs": tmpfs, "devices": devices}
