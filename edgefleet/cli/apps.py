"""``edgefleet apps``: applications and their versions."""

from __future__ import annotations

from pathlib import Path

import typer

from edgefleet.cli import config
from edgefleet.cli import output as out  # `output` is the --output option's name here
from edgefleet.cli.output import Format, OutputOption, fail, show_item, show_list

app = typer.Typer(help="Applications (Compose files) and their versions.", no_args_is_help=True)

FileOption = typer.Option(
    ..., "--file", "-f", help="compose file (YAML)", exists=True, dir_okay=False
)


ContextOption = typer.Option(
    None,
    "--context",
    help="directory to upload as the build context: Compose build: then builds on each device",
    exists=True,
    file_okay=False,
)


def _context(client: object, directory: Path | None, project: str) -> str | None:
    """Upload the directory as a tar; its digest, for the version."""
    if directory is None:
        return None
    try:
        answer = client.upload_build_context(directory, project)  # type: ignore[attr-defined]
    except OSError as exc:
        raise fail(f"cannot pack {directory}: {exc}") from exc
    return str(answer["context"])


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {path}: {exc}") from exc


def print_findings(findings: list[dict[str, object]], path: str) -> None:
    for finding in findings:
        where = f"{path}:{finding['line']}" if finding.get("line") else path
        style = "red" if finding["level"] == "error" else "yellow"
        out.err_console.print(
            f"[{style}]{finding['level']}[/{style}] {where}: {finding['key']}: {finding['message']}",
            highlight=False,
        )


@app.command("create")
def create(
    name: str = typer.Argument(..., help="application name"),
    file: Path = FileOption,
    version: str = typer.Option("1", "--version", "-v", help="version label"),
    project: str = typer.Option("default", "--project", "-p"),
    description: str = typer.Option("", "--description", "-d"),
    context: Path = ContextOption,
    output: Format = OutputOption,
) -> None:
    """Create an application from a compose file (its first version)."""
    with config.client() as client:
        digest = _context(client, context, project)
        item = _upload(
            client,
            lambda: client.create_application(
                name,
                version,
                compose=_read(file),
                project=project,
                description=description,
                context=digest,
            ),
            str(file),
        )
    show_item(
        item,
        output,
        [
            ("id", lambda a: a["id"]),
            ("name", lambda a: a["name"]),
            ("versions", lambda a: ", ".join(a["versions"])),
        ],
    )


@app.command("version")
def add_version(
    name: str = typer.Argument(..., help="application name or id"),
    file: Path = FileOption,
    version: str = typer.Option(..., "--version", "-v", help="new version label"),
    context: Path = ContextOption,
    output: Format = OutputOption,
) -> None:
    """Add a version to an application (versions are immutable)."""
    with config.client() as client:
        digest = _context(client, context, client.application(name)["project"] if context else "")
        item = _upload(
            client,
            lambda: client.add_version(name, version, compose=_read(file), context=digest),
            str(file),
        )
    show_item(
        item,
        output,
        [
            ("application", lambda _: name),
            ("version", lambda v: v["version"]),
            ("services", lambda v: ", ".join(v["services"])),
        ],
    )


def _upload(client: object, call: object, path: str) -> dict[str, object]:
    from edgefleet.client import Invalid

    try:
        result: dict[str, object] = call()  # type: ignore[operator]
    except Invalid as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        findings = body.get("findings") or []
        if findings:
            print_findings(findings, path)
            raise fail(
                f"{path} was not accepted ({sum(1 for f in findings if f['level'] == 'error')} error(s))"
            ) from exc
        raise
    warnings = result.get("warnings")
    if isinstance(warnings, list):
        print_findings(warnings, path)
    return result


@app.command("validate")
def validate(file: Path = FileOption, output: Format = OutputOption) -> None:
    """Check a compose file locally, without uploading: every error and warning with its line."""
    from edgefleet.spec import compose

    findings = [f.to_dict() for f in compose.validate(_read(file))]
    if output == Format.json:
        show_item(
            {"valid": not any(f["level"] == "error" for f in findings), "findings": findings},
            output,
        )
    else:
        print_findings(findings, str(file))
    errors = sum(1 for f in findings if f["level"] == "error")
    if errors:
        raise typer.Exit(1)
    if output != Format.json:
        out.console.print(f"{file}: valid ({len(findings)} warning(s))")


@app.command("list")
def list_apps(
    project: str = typer.Option(None, "--project", "-p"), output: Format = OutputOption
) -> None:
    """List applications."""
    with config.client() as client:
        items = client.applications(project)
    show_list(
        items,
        [
            ("ID", lambda a: a["id"]),
            ("NAME", lambda a: a["name"]),
            ("PROJECT", lambda a: a["project"]),
            ("LATEST", lambda a: a.get("latest")),
            ("VERSIONS", lambda a: len(a["versions"])),
        ],
        output,
    )


@app.command("show")
def show(name: str, output: Format = OutputOption) -> None:
    """Show an application."""
    with config.client() as client:
        item = client.application(name)
    show_item(
        item,
        output,
        [
            ("id", lambda a: a["id"]),
            ("name", lambda a: a["name"]),
            ("project", lambda a: a["project"]),
            ("description", lambda a: a["description"]),
            ("versions", lambda a: ", ".join(a["versions"])),
        ],
    )


@app.command("versions")
def versions(name: str, output: Format = OutputOption) -> None:
    """List an application's versions."""
    with config.client() as client:
        items = client.versions(name)
    show_list(
        items,
        [
            ("VERSION", lambda v: v["version"]),
            ("CREATED", lambda v: v["created_at"]),
            ("BY", lambda v: v["created_by"]),
            ("SERVICES", lambda v: ", ".join(v["services"])),
        ],
        output,
    )


@app.command("rm")
def remove(name: str, yes: bool = typer.Option(False, "--yes", "-y")) -> None:
    """Delete an application with no active jobs."""
    if not yes:
        typer.confirm(f"Delete application {name} and all its versions?", abort=True)
    with config.client() as client:
        client.delete_application(name)
    typer.echo(f"deleted {name}")
