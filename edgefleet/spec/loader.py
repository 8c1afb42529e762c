"""YAML text -> plain data plus the line of every key path.

Compose reads YAML 1.2 (Go's yaml.v3), PyYAML reads YAML 1.1, and the two
differ where it hurts: ``restart: no`` is the string ``"no"`` in Compose but
``False`` in YAML 1.1, and ``- 22:22`` is a port mapping, not the base-60
number 1342. :class:`ComposeLoader` therefore resolves booleans, integers and
floats like yaml.v3 (keeping its ``0755`` octal) and leaves dates as strings.

Data is built from the composed node graph ourselves (not by PyYAML's
constructor) so each key's line is known, merge keys (``<<``) keep the lines
of the anchor they came from, and duplicate keys are an error as in Compose.

Anyone who may upload an application hands us this text, so the work it can
cause is bounded by a :class:`Budget`: aliases may expand the document
exponentially ("billion laughs") while the text stays small, so the builder
counts the bytes, values and depth of the *expanded* tree and stops at the
first limit; the composer refuses deep nesting before Python's recursion
limit does; both check a deadline. Every failure, PyYAML's included (a
non-printable character, a bad ``!!int``, a 5000-digit number), is a
:class:`SpecInvalid` with a line and column, never another exception. The
server sets its own budget with :func:`budget` (its settings); other callers
(the CLI, tests) get the defaults.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import yaml

from edgefleet.spec.findings import Finding, Path, SpecInvalid

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
MiB = 1024 * 1024
NODE_BYTES = 8
"""What one value costs beyond its text (a list slot, a dict entry), so a
million empty strings count too."""


@dataclass(frozen=True)
class Budget:
    """How much work one Compose text may cause. No real file comes near the
    defaults; a bomb hits one of them within a fraction of a second."""

    max_bytes: int = 4 * MiB
    """Bytes of the expanded document: every scalar and key, aliases expanded."""
    max_nodes: int = 50_000
    """Values (scalars, lists, mappings) of the expanded document."""
    max_depth: int = 32
    """Nesting of lists and mappings, in the text and once aliases are expanded."""
    max_key_chars: int = 1024
    """Characters of one mapping key (keys become paths in every finding)."""
    seconds: float = 2.0
    """Wall time for reading one document."""


DEFAULT_BUDGET = Budget()
_BUDGET: ContextVar[Budget | None] = ContextVar("compose_budget", default=None)


@contextmanager
def budget(limits: Budget) -> Iterator[None]:
    """Load (and parse) with ``limits`` inside this block, in this thread or task."""
    token = _BUDGET.set(limits)
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n % MiB == 0 else f"{n} bytes"


class ComposeLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars, as Compose reads them, that refuses
    nesting past the budget's depth and stops at its deadline."""

    def __init__(self, stream: str, limits: Budget | None = None) -> None:
        super().__init__(stream)
        self.limits = limits or _BUDGET.get() or DEFAULT_BUDGET
        self.deadline = time.monotonic() + self.limits.seconds
        self._depth = 0

    def check_deadline(self, mark: yaml.Mark | None) -> None:
        if time.monotonic() > self.deadline:
            raise _fail(
                mark,
                f"reading the document took longer than {self.limits.seconds:g} s; "
                "it is too large or too complex",
            )

    def fetch_flow_collection_start(self, TokenClass: type) -> None:
        """Refuse a ``[`` or ``{`` past the depth as the scanner meets it. The
        scanner reads ahead through a run of openers before the composer sees a
        node, so ``[`` x 100,000 cost ~0.3 s of CPU before :meth:`compose_node`
        could count it; on a loaded machine, in the low-priority parsing
        processes, that ran into the deadline instead of naming the nesting."""
        if self.flow_level >= self.limits.max_depth:
            raise _fail(
                self.get_mark(),
                f"the document nests deeper than {self.limits.max_depth} levels",
            )
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        self.check_deadline(mark)
        self._depth += 1
        try:
            if self._depth > self.limits.max_depth:
                raise _fail(mark, f"the document nests deeper than {self.limits.max_depth} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


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


_START = yaml.Mark("<compose>", 0, 0, 0, None, 0)


def _fail(mark: yaml.Mark | None, message: str) -> SpecInvalid:
    """One error finding at ``mark`` (1-based line and column)."""
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    return SpecInvalid([Finding("error", "", line, message, column)])


def _reader_error(text: str, exc: yaml.reader.ReaderError) -> SpecInvalid:
    """PyYAML reports a bad character by offset only; say where it is."""
    position = max(0, min(int(exc.position), len(text)))
    line = text.count("\n", 0, position)
    column = position - (text.rfind("\n", 0, position) + 1)
    char = exc.character
    code = f"#x{char:04x}" if isinstance(char, int) else repr(char)
    mark = yaml.Mark("<compose>", position, line, column, None, 0)
    return _fail(
        mark,
        f"the file holds a non-printable character ({code}); YAML allows only printable "
        "characters, tabs and line breaks",
    )


class _Builder:
    """Turns composed nodes into dicts, lists and scalars, recording lines and
    counting what the expanded tree costs against the loader's budget."""

    def __init__(self, loader: ComposeLoader) -> None:
        self.loader = loader
        self.limits = loader.limits
        self.lines: dict[Path, int] = {}
        self._active: set[int] = set()
        self._nodes = 0
        self._bytes = 0

    def _spend(self, node: yaml.Node, nbytes: int, depth: int) -> None:
        limits = self.limits
        self._nodes += 1
        self._bytes += nbytes + NODE_BYTES
        if self._bytes > limits.max_bytes:
            raise _fail(
                node.start_mark,
                f"the document expands past {_size(limits.max_bytes)} (YAML aliases "
                "repeating large values?)",
            )
        if self._nodes > limits.max_nodes:
            raise _fail(
                node.start_mark,
                f"the document expands to more than {limits.max_nodes} values "
                "(YAML aliases inside aliases?)",
            )
        if depth > limits.max_depth:
            raise _fail(
                node.start_mark,
                f"the document nests deeper than {limits.max_depth} levels once its "
                "YAML aliases are expanded",
            )
        if self._nodes % 1024 == 0:
            self.loader.check_deadline(node.start_mark)

    def build(self, node: yaml.Node, path: Path) -> Any:
        if id(node) in self._active:
            raise _fail(node.start_mark, "an alias refers to its own anchor (a loop)")
        if isinstance(node, yaml.ScalarNode):
            self._spend(node, len(node.value), len(path))
            return self._scalar(node)
        self._spend(node, 0, len(path))
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
        raise _fail(node.start_mark, f"unsupported YAML node {node.tag}")

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        try:
            value = self.loader.construct_object(node)
        except (ValueError, TypeError, OverflowError) as exc:
            # `!!int abc`, `!!float x`, a 5000-digit integer: PyYAML lets int() fail.
            kind = node.tag.rsplit(":", 1)[-1]
            shown = node.value[:20] + ("…" if len(node.value) > 20 else "")
            raise _fail(
                node.start_mark,
                f"{shown!r} ({len(node.value)} characters) cannot be read as {kind}",
            ) from exc
        return value if isinstance(value, str | int | float | bool | None) else node.value

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
                raise _fail(key_node.start_mark, "a mapping key must be a plain string")
            key = str(key_node.value)
            if len(key) > self.limits.max_key_chars:
                raise _fail(
                    key_node.start_mark,
                    f"a mapping key is {len(key)} characters long (starting {key[:20]!r}); "
                    f"keys may be at most {self.limits.max_key_chars}",
                )
            self._bytes += len(key)
            line = key_node.start_mark.line + 1
            if key in own:
                raise _fail(key_node.start_mark, f"key {key!r} appears twice in the same mapping")
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
        raise _fail(node.start_mark, "a merge key (<<) takes a mapping or a list of them")


def load_with_lines(
    text: str, limits: Budget | None = None
) -> tuple[dict[str, Any], dict[Path, int]]:
    """Parse YAML text within ``limits`` (default: the current :func:`budget`);
    raises :class:`SpecInvalid` (with line and column) on bad or too costly YAML."""
    try:
        loader = ComposeLoader(text, limits)
    except yaml.reader.ReaderError as exc:
        raise _reader_error(text, exc) from exc
    try:
        root = loader.get_single_node()
        if root is None:
            raise _fail(_START, "the file is empty; it needs a top-level `services:` mapping")
        if not isinstance(root, yaml.MappingNode):
            raise _fail(
                root.start_mark,
                "the top level must be a mapping with a `services:` key, not a "
                + ("list" if isinstance(root, yaml.SequenceNode) else "single value"),
            )
        builder = _Builder(loader)
        data = builder.build(root, ())
    except yaml.reader.ReaderError as exc:
        raise _reader_error(text, exc) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = "; ".join(p for p in (exc.context, exc.problem) if p)
        raise _fail(
            mark, f"YAML syntax error: {detail}; check the indentation and quoting on this line"
        ) from exc
    except yaml.YAMLError as exc:
        raise _fail(None, f"YAML syntax error: {exc}") from exc
    except RecursionError as exc:  # the depth limit should come first; never a 500
        raise _fail(None, "the document nests too deeply") from exc
    finally:
        loader.dispose()
    builder.lines[()] = root.start_mark.line + 1
    return data, builder.lines


def load_yaml(text: str) -> dict[str, Any]:
    """Parse a Compose file's YAML text into plain data (anchors and ``<<`` resolved)."""
    return load_with_lines(text)[0]
