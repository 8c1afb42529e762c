"""Errors are caught where they are expected and logged once; the rest surface.

Scans edgefleet/ with ``ast``. Not allowed:

- ``contextlib.suppress(Exception)`` (or ``BaseException``): it hides every bug
  in the block, so name what you expect there;
- ``except Exception`` / ``except BaseException`` / a bare ``except:`` whose body
  neither re-raises nor logs with ``log.exception`` (the traceback, once). Where
  a broad catch is right (a supervisor loop that must outlive one bad pass, one
  client's failure isolated from the others), it logs the traceback and says why.

:data:`ALLOWED` names the few places that may do otherwise, each with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "edgefleet"
BROAD = {"Exception", "BaseException"}

# (path under edgefleet/, enclosing function, e.g. ("agent/health.py",
# "HealthTracker._run")): why neither logging nor re-raising is right there.
# Empty: every broad catch in the package logs its traceback or re-raises.
ALLOWED: dict[tuple[str, str], str] = {}


def _names(node: ast.expr | None) -> set[str]:
    """The exception class names an ``except`` clause or ``suppress(...)`` names."""
    if node is None:
        return {"BaseException"}  # a bare except
    items = node.elts if isinstance(node, ast.Tuple) else [node]
    return {
        item.id if isinstance(item, ast.Name) else item.attr
        for item in items
        if isinstance(item, ast.Name | ast.Attribute)
    }


def _logs_or_raises(body: list[ast.stmt]) -> bool:
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Raise):
                return True
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "exception"
            ):
                return True
    return False


def _is_suppress(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name == "suppress"


class Finder(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.scope: list[str] = []
        self.found: list[tuple[str, str, int, str]] = []

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _function

    def _note(self, node: ast.AST, what: str) -> None:
        where = ".".join(self.scope) or "<module>"
        self.found.append((self.path, where, getattr(node, "lineno", 0), what))

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if _names(node.type) & BROAD and not _logs_or_raises(node.body):
            self._note(node, "broad except that neither re-raises nor logs the traceback")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if _is_suppress(node) and any(_names(arg) & BROAD for arg in node.args):
            self._note(node, "suppress(Exception)")
        self.generic_visit(node)


def offenders() -> list[tuple[str, str, int, str]]:
    found = []
    for file in sorted(PACKAGE.rglob("*.py")):
        path = str(file.relative_to(PACKAGE))
        if path.startswith("server/migrations/"):
            continue
        finder = Finder(path)
        finder.visit(ast.parse(file.read_text(), str(file)))
        found += [f for f in finder.found if (f[0], f[1]) not in ALLOWED]
    return found


def test_no_error_is_swallowed() -> None:
    found = offenders()
    report = "\n".join(
        f"edgefleet/{path}:{line} in {where}: {what}" for path, where, line, what in found
    )
    assert not found, f"{len(found)} swallowed errors:\n{report}"


def test_the_finder_sees_what_it_must() -> None:
    source = """
import contextlib, logging
log = logging.getLogger()
def quiet():
    with contextlib.suppress(ValueError, Exception):
        pass
    try:
        pass
    except (OSError, Exception):
        pass
    try:
        pass
    except:
        return None
def fine():
    with contextlib.suppress(OSError):
        pass
    try:
        pass
    except Exception:  # a loop that must outlive one pass
        log.exception("pass failed")
    try:
        pass
    except BaseException:
        cleanup = 1
        raise
"""
    finder = Finder("x.py")
    finder.visit(ast.parse(source))
    assert [(where, line) for _, where, line, _ in finder.found] == [
        ("quiet", 5),
        ("quiet", 9),
        ("quiet", 13),
    ]
