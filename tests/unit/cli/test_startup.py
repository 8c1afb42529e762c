"""The CLI starts fast (issue 16): what ``edgefleet`` imports before doing
anything must stay small. Each check runs a fresh interpreter, so it sees the
real start-up, not this test process's modules."""

from __future__ import annotations

import subprocess
import sys

# What the CLI no longer loads at start-up. Each was there before (server and
# agent settings for the process verbs' flags, pydantic for them and for Typer's
# parameter coercion, httpx for --version, Rich for commands that print nothing).
HEAVY = (
    "edgefleet.server",
    "edgefleet.agent",
    "edgefleet.wire",
    "edgefleet.spec",
    "edgefleet.fed",
    "edgefleet.cli.processes",
    "edgefleet.cli.admin",
    "edgefleet.cli.jobs",
    "sqlalchemy",
    "fastapi",
    "starlette",
    "uvicorn",
    "yaml",
    "pydantic",
    "pydantic_settings",
    "rich",
    "httpx",
    "websockets",
    "asyncio",
)


# Modules actually loaded (a None entry only blocks an import).
_PRINT = "print('\\n'.join(sorted(m for m, v in sys.modules.items() if v is not None)))"


def _modules(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\n" + _PRINT],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def _heavy(modules: set[str], allowed: tuple[str, ...] = ()) -> list[str]:
    return sorted(
        m
        for m in modules
        if any(m == h or m.startswith(h + ".") for h in HEAVY)
        and not any(m == a or m.startswith(a + ".") for a in allowed)
    )


def test_importing_the_cli_loads_nothing_heavy() -> None:
    modules = _modules("import edgefleet.cli.main")
    assert "edgefleet.cli.main" in modules
    assert _heavy(modules) == []


def test_version_parses_the_command_line_without_heavy_modules() -> None:
    """``edgefleet --version`` goes through Typer's parsing of the root options."""
    code = (
        "import sys\n"
        "sys.argv = ['edgefleet', '--server', 'http://127.0.0.1:9', '--version']\n"
        "import edgefleet.cli\n"
        "try:\n"
        "    edgefleet.cli.main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
    )
    modules = _modules(code)
    assert _heavy(modules) == []


def test_exec_path_needs_only_httpx() -> None:
    """Dispatching to ``exec`` and ``devices list``, parsing their arguments
    (Typer's coercion included) and making the client: httpx, nothing else heavy."""
    code = (
        "import sys\n"
        "sys.modules.setdefault('httpx._main', None)  # as the entry point does\n"
        "import typer\n"
        "from edgefleet.cli.main import app\n"
        "root = typer.main.get_command(app)\n"
        "for argv in (['exec', 'dev', '--timeout', '5', '--', 'true'], ['devices', 'list', '-o', 'json']):\n"
        "    ctx = root.make_context('edgefleet', list(argv))\n"
        "    name, cmd, rest = root.resolve_command(ctx, ctx._protected_args + ctx.args)\n"
        "    if hasattr(cmd, 'commands'):\n"
        "        sub = cmd.make_context(name, rest, parent=ctx)\n"
        "        name, cmd, rest = cmd.resolve_command(sub, sub._protected_args + sub.args)\n"
        "    params = cmd.make_context(name, rest, parent=ctx).params\n"
        "    assert params.get('timeout', 5.0) == 5.0 and isinstance(params.get('timeout', 5.0), float), params\n"
        "from edgefleet.cli import config\n"
        "config.client().close()\n"
    )
    modules = _modules(code)
    assert "httpx" in modules and "edgefleet.cli.remote" in modules
    assert _heavy(modules, allowed=("httpx",)) == []
    assert "httpx._main" not in modules


def test_the_entry_point_skips_httpx_command_line_tool() -> None:
    """httpx's own CLI (click, Rich, Pygments) is not loaded by ours."""
    code = (
        "import sys\n"
        "sys.argv = ['edgefleet', '--version']\n"
        "import edgefleet.cli\n"
        "try:\n"
        "    edgefleet.cli.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "import httpx\n"
    )
    modules = _modules(code)
    assert "httpx" in modules
    assert "rich" not in modules and "pygments" not in modules and "click" not in modules


def test_every_verb_loads_and_none_is_missing_from_the_table() -> None:
    """The lazy table names exactly the verbs its loaders register, so
    ``edgefleet --help`` lists them all, in the table's order."""
    import typer

    from edgefleet.cli.main import _VERBS, app

    root = typer.main.get_command(app)
    names = root.list_commands(None)  # type: ignore[arg-type]
    assert names == list(_VERBS)
    for name in names:
        command = root.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.name == name
    assert list(root.commands) == list(_VERBS)  # no loader registered an unlisted verb


def test_bad_values_still_get_typers_own_messages() -> None:
    """The pydantic-free converter hands invalid values to Typer: same message, exit 2."""
    done = subprocess.run(
        [sys.executable, "-m", "edgefleet", "exec", "--timeout", "soon", "dev", "--", "true"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "EDGEFLEET_SERVER": "http://127.0.0.1:9"},
    )
    assert done.returncode == 2
    assert "Invalid value for '--timeout'" in done.stderr
    assert "valid number" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "edgefleet", "devices", "list", "-o", "xml"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "EDGEFLEET_SERVER": "http://127.0.0.1:9"},
    )
    assert done.returncode == 2
    assert "'xml' is not one of 'table', 'json'" in done.stderr
