"""Projects, members, users, API tokens and provisioning keys."""

from __future__ import annotations

import typer

from edgefleet.cli import config
from edgefleet.cli.output import Format, OutputOption, ago, fail, labels_text, show_item, show_list
from edgefleet.labels import LabelError, parse_assignments

projects = typer.Typer(help="Projects and their members.", no_args_is_help=True)
users = typer.Typer(help="Users (administrators).", no_args_is_help=True)
tokens = typer.Typer(help="API tokens.", no_args_is_help=True)
keys = typer.Typer(help="Provisioning keys that enroll devices.", no_args_is_help=True)


@projects.command("list")
def projects_list(output: Format = OutputOption) -> None:
    """List the projects you can see."""
    with config.client() as client:
        items = client.projects()
    show_list(
        items,
        [
            ("ID", lambda p: p["id"]),
            ("NAME", lambda p: p["name"]),
            ("YOUR ROLE", lambda p: p.get("role")),
            ("MEMBERS", lambda p: ", ".join(f"{m['user']}:{m['role']}" for m in p["members"])),
        ],
        output,
    )


@projects.command("create")
def projects_create(
    name: str,
    description: str = typer.Option("", "--description", "-d"),
    output: Format = OutputOption,
) -> None:
    """Create a project (administrators)."""
    with config.client() as client:
        item = client.create_project(name, description)
    show_item(item, output, [("id", lambda p: p["id"]), ("name", lambda p: p["name"])])


@projects.command("show")
def projects_show(project: str, output: Format = OutputOption) -> None:
    """Show a project and its members."""
    with config.client() as client:
        item = client.project(project)
    show_item(
        item,
        output,
        [
            ("id", lambda p: p["id"]),
            ("name", lambda p: p["name"]),
            ("description", lambda p: p["description"]),
            ("members", lambda p: ", ".join(f"{m['user']}:{m['role']}" for m in p["members"])),
        ],
    )


@projects.command("rm")
def projects_rm(project: str, yes: bool = typer.Option(False, "--yes", "-y")) -> None:
    """Delete an empty project."""
    if not yes:
        typer.confirm(f"Delete project {project}?", abort=True)
    with config.client() as client:
        client.delete_project(project)
    typer.echo(f"deleted {project}")


@projects.command("add-member")
def projects_add_member(
    project: str,
    user: str,
    role: str = typer.Option("viewer", "--role", "-r", help="owner, operator, developer or viewer"),
) -> None:
    """Add a user to a project (or change their role)."""
    with config.client() as client:
        client.add_member(project, user, role)
    typer.echo(f"{user} is {role} of {project}")


@projects.command("remove-member")
def projects_remove_member(project: str, user: str) -> None:
    """Remove a user from a project."""
    with config.client() as client:
        client.remove_member(project, user)
    typer.echo(f"{user} removed from {project}")


@users.command("list")
def users_list(output: Format = OutputOption) -> None:
    """List users."""
    with config.client() as client:
        items = client.users()
    show_list(
        items,
        [
            ("ID", lambda u: u["id"]),
            ("NAME", lambda u: u["name"]),
            ("ADMIN", lambda u: u["admin"]),
            ("PROJECTS", lambda u: ", ".join(f"{p}:{r}" for p, r in u["projects"].items())),
        ],
        output,
    )


@users.command("create")
def users_create(
    name: str,
    admin: bool = typer.Option(False, "--admin", help="make an administrator"),
    password: str = typer.Option(
        None, "--password", help="portal password (or set it later with passwd)"
    ),
    output: Format = OutputOption,
) -> None:
    """Create a user."""
    with config.client() as client:
        item = client.create_user(name, password=password, admin=admin)
    show_item(item, output, [("id", lambda u: u["id"]), ("name", lambda u: u["name"])])


@users.command("passwd")
def users_passwd(
    user: str = typer.Argument("me", help="whose password (default: your own)"),
    password: str = typer.Option(
        ..., "--password", prompt="new password", hide_input=True, confirmation_prompt=True
    ),
    current_password: str | None = typer.Option(
        None,
        "--current-password",
        help="your current password (asked for when you change your own)",
    ),
) -> None:
    """Set a portal password: your own (needs the current one) or, for
    administrators, another user's."""
    with config.client() as client:
        me = client.me()
        own = user in ("me", me["id"], me["name"])
        if own and current_password is None and me.get("has_password"):
            current_password = typer.prompt("current password", hide_input=True)
        client.set_password(me["name"] if user == "me" else user, password, current_password)
    typer.echo(f"password of {me['name'] if user == 'me' else user} set")


@users.command("rm")
def users_rm(user: str, yes: bool = typer.Option(False, "--yes", "-y")) -> None:
    """Delete a user."""
    if not yes:
        typer.confirm(f"Delete user {user}?", abort=True)
    with config.client() as client:
        client.delete_user(user)
    typer.echo(f"deleted {user}")


TOKEN_COLUMNS = [
    ("ID", lambda t: t["id"]),
    ("NAME", lambda t: t["name"]),
    ("USER", lambda t: t["user"]),
    ("PREFIX", lambda t: t["prefix"] + "…"),
    ("EXPIRES", lambda t: t.get("expires_at") or "never"),
    ("REVOKED", lambda t: t.get("revoked_at") or "-"),
    ("LAST USED", lambda t: ago(t.get("last_used_at"))),
]


@tokens.command("list")
def tokens_list(
    user: str = typer.Option(None, "--user", help="administrators: another user's tokens"),
    all_users: bool = typer.Option(False, "--all", help="administrators: everyone's tokens"),
    output: Format = OutputOption,
) -> None:
    """List API tokens (never their secrets)."""
    with config.client() as client:
        items = client.tokens(user=user, all_users=all_users)
    show_list(items, TOKEN_COLUMNS, output)


@tokens.command("create")
def tokens_create(
    name: str = typer.Option("", "--name", "-n"),
    user: str = typer.Option(None, "--user", help="administrators: for another user"),
    expires_in: int = typer.Option(None, "--expires-in", help="seconds until it expires"),
    output: Format = OutputOption,
) -> None:
    """Create an API token; its secret is shown once."""
    with config.client() as client:
        item = client.create_token(name, user=user, expires_in=expires_in)
    if output == Format.json:
        show_item(item, output)
    else:
        typer.echo(f"token {item['id']} for {item['user']} (shown once):")
        typer.echo(item["token"])


@tokens.command("revoke")
def tokens_revoke(token_id: str) -> None:
    """Revoke an API token."""
    with config.client() as client:
        client.revoke_token(token_id)
    typer.echo(f"revoked {token_id}")


KEY_COLUMNS = [
    ("ID", lambda k: k["id"]),
    ("NAME", lambda k: k["name"]),
    ("PROJECT", lambda k: k["project"]),
    ("PREFIX", lambda k: k["prefix"] + "…"),
    ("LABELS", lambda k: labels_text(k["labels"])),
    ("USES", lambda k: f"{k['uses']}/{k['max_uses'] or '∞'}"),
    ("EXPIRES", lambda k: k.get("expires_at") or "never"),
    ("REVOKED", lambda k: k.get("revoked_at") or "-"),
]


@keys.command("create")
def keys_create(
    project: str = typer.Option("default", "--project", "-p"),
    label: list[str] = typer.Option(
        [], "--label", "-l", help="k=v given to enrolled devices (repeat)"
    ),
    name: str = typer.Option("", "--name", "-n"),
    expires_in: int = typer.Option(None, "--expires-in", help="seconds until it expires"),
    max_uses: int = typer.Option(None, "--max-uses", help="how many devices it may enroll"),
    output: Format = OutputOption,
) -> None:
    """Create a provisioning key; it is shown once with the command to run on a device."""
    try:
        labels = parse_assignments(label)
    except LabelError as exc:
        raise fail(str(exc)) from exc
    with config.client() as client:
        item = client.create_key(
            project, labels=labels, name=name, expires_in=expires_in, max_uses=max_uses
        )
    if output == Format.json:
        show_item(item, output)
        return
    typer.echo(f"provisioning key {item['id']} for project {item['project']} (shown once):")
    typer.echo(item["key"])
    typer.echo("\nOn a device, run:")
    typer.echo(f"  {item['command']}")


@keys.command("list")
def keys_list(
    project: str = typer.Option(None, "--project", "-p"), output: Format = OutputOption
) -> None:
    """List provisioning keys (never their secrets)."""
    with config.client() as client:
        items = client.keys(project)
    show_list(items, KEY_COLUMNS, output)


@keys.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a provisioning key; devices it enrolled are not affected."""
    with config.client() as client:
        client.revoke_key(key_id)
    typer.echo(f"revoked {key_id}")
