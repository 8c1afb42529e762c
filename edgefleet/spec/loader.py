"""YAML text -> plain data plus the line of every key path.

Compose reads YAML 1.2 (Go's yaml.v3), PyYAML reads YAML 1.1, and the two
differ where it hurts: ``restart: no`` is the string ``"no"`` in Compose but
``False`` in YAML 1.1, and ``- 22:22`` is a port mapping, not the base-60
number 1342. :class:`ComposeLoader` therefore resolves booleans, integers and
floats like yaml.v3 (keeping its ``0755`` octal) and leaves dates as strings.

Data is built from the composed node graph ourselves (not by PyYAML's
constructor) so each key's line is known, merge keys (``<<``) keep the lines
of the anchor they came from, and duplicate keys are an error as in Compose.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from edgefleet.spec.findings import Finding, Path, SpecInvalid

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
MAX_NODES = 200_000
"""Aliases can expand exponentially ("billion laughs"); no real Compose file
comes near this many values once expanded."""


class ComposeLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars, as Compose reads them."""


ComposeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ComposeLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
ComposeLoader.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
ComposeLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _fail(line: int | None, message: str) -> SpecInvalid:
    return SpecInvalid([Finding("error", "", line, message)])


class _Builder:
    """Turns composed nodes into dicts, lists and scalars, recording lines."""

    def __init__(self, loader: ComposeLoader) -> None:
        self.loader = loader
        self.lines: dict[Path, int] = {}
        self._active: set[int] = set()
        self._budget = MAX_NODES

    def build(self, node: yaml.Node, path: Path) -> Any:
        self._budget -= 1
        if self._budget < 0:
            raise _fail(
                node.start_mark.line + 1,
                f"the file expands to more than {MAX_NODES} values (aliases inside aliases?)",
            )
        if id(node) in self._active:
            raise _fail(node.start_mark.line + 1, "an alias refers to its own anchor (a loop)")
        if isinstance(node, yaml.ScalarNode):
            value = self.loader.construct_object(node)
            return value if isinstance(value, str | int | float | bool | None) else node.value
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                out: list[Any] = []
                for i, item in enumerate(node.value):
                    self.lines[(*path, i)] = item.start_mark.line + 1
                    out.append(self.build(item, (*path, i)))
                return out
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
        finally:
            self._active.discard(id(node))
        raise _fail(node.start_mark.line + 1, f"unsupported YAML node {node.tag}")

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        # Merged keys first, so the lines of keys written here win over the anchor's.
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                # The first source wins (YAML merge), so build it last.
                for source in reversed(self._merge_sources(value_node)):
                    merged.update(self.build(source, path))
        own: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise _fail(key_node.start_mark.line + 1, "a mapping key must be a plain string")
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in own:
                raise _fail(line, f"key {key!r} appears twice in the same mapping")
            self.lines[(*path, key)] = line
            own[key] = self.build(value_node, (*path, key))
        return {**merged, **own}

    @staticmethod
    def _merge_sources(node: yaml.Node) -> list[yaml.MappingNode]:
        if isinstance(node, yaml.MappingNode):
            return [node]
        if isinstance(node, yaml.SequenceNode) and all(
            isinstance(n, yaml.MappingNode) for n in node.value
        ):
            return list(node.value)
        raise _fail(node.start_mark.line + 1, "a merge key (<<) takes a mapping or a list of them")


def load_with_lines(text: str) -> tuple[dict[str, Any], dict[Path, int]]:
    """Parse YAML text; raises :class:`SpecInvalid` (with the line) on bad YAML."""
    loader = ComposeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise _fail(1, "the file is empty; it needs a top-level `services:` mapping")
        if not isinstance(root, yaml.MappingNode):
            raise _fail(
                root.start_mark.line + 1,
                "the top level must be a mapping with a `services:` key, not a "
                + ("list" if isinstance(root, yaml.SequenceNode) else "single value"),
            )
        builder = _Builder(loader)
        data = builder.build(root, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = "; ".join(p for p in (exc.context, exc.problem) if p)
        raise _fail(
            mark.line + 1 if mark else None,
            f"YAML syntax error: {detail}; check the indentation and quoting on this line",
        ) from exc
    except yaml.YAMLError as exc:
        raise _fail(None, f"YAML syntax error: {exc}") from exc
    finally:
        loader.dispose()
    builder.lines[()] = root.start_mark.line + 1
    return data, builder.lines


def load_yaml(text: str) -> dict[str, Any]:
    """Parse a Compose file's YAML text into plain data (anchors and ``<<`` resolved)."""
    return load_with_lines(text)[0]
