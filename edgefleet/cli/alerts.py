"""``edgefleet alerts``: alert rules, the webhooks that receive alerts, and the alerts."""

from __future__ import annotations

from typing import Any

import typer

from edgefleet.cli import config
from edgefleet.cli.output import Format, OutputOption, ago, fail, show_item, show_list

app = typer.Typer(
    help="Alerts: rules per project, webhooks, firing and resolved alerts.", no_args_is_help=True
)
rules = typer.Typer(help="Alert rules: what to watch and when it fires.", no_args_is_help=True)
webhooks = typer.Typer(
    help="Webhooks receiving the project's alerts (HMAC-signed).", no_args_is_help=True
)
app.add_typer(rules, name="rules")
app.add_typer(webhooks, name="webhooks")
ProjectOption = typer.Option("default", "--project", "-p", help="project id or name")
KINDS = ("device_offline", "job_failed", "disk_above", "backlog_above")


def _when(rule: dict[str, Any]) -> str:
    if rule["kind"] == "device_offline":
        return f"offline >= {rule['for_seconds']:g} s"
    if rule["kind"] == "job_failed":
        return "a job fails on a device"
    unit = "%" if rule["kind"] == "disk_above" else " records"
    return f"> {rule['threshold']:g}{unit}"


RULE_COLUMNS = [
    ("NAME", lambda r: r["name"]),
    ("KIND", lambda r: r["kind"]),
    ("FIRES WHEN", _when),
    ("ENABLED", lambda r: "yes" if r["enabled"] else "no"),
    ("ID", lambda r: r["id"]),
]


@rules.command("add")
def add_rule(
    name: str = typer.Argument(..., help="a name for the rule, unique in the project"),
    kind: str = typer.Option(..., "--kind", "-k", help="|".join(KINDS)),
    threshold: float | None = typer.Option(
        None, "--threshold", help="disk_above: percent used; backlog_above: records waiting"
    ),
    for_seconds: float = typer.Option(
        0.0, "--for", help="device_offline: seconds offline before it fires (300 = 5 minutes)"
    ),
    project: str = ProjectOption,
    output: Format = OutputOption,
) -> None:
    """Add an alert rule."""
    if kind not in KINDS:
        raise fail(f"--kind must be one of {', '.join(KINDS)}", 2)
    with config.client() as client:
        item = client.add_alert_rule(
            name, kind, threshold=threshold, for_seconds=for_seconds, project=project
        )
    show_item(item, output, [(c.lower(), f) for c, f in RULE_COLUMNS])


@rules.command("list")
def list_rules(project: str = ProjectOption, output: Format = OutputOption) -> None:
    """The project's alert rules."""
    with config.client() as client:
        items = client.alert_rules(project)
    show_list(items, RULE_COLUMNS, output)


@rules.command("set")
def set_rule(
    rule: str = typer.Argument(..., help="rule name or id"),
    threshold: float | None = typer.Option(None, "--threshold"),
    for_seconds: float | None = typer.Option(None, "--for"),
    enabled: bool | None = typer.Option(None, "--enable/--disable"),
    project: str = ProjectOption,
    output: Format = OutputOption,
) -> None:
    """Change a rule's threshold, duration, or switch it on or off."""
    changes = {"threshold": threshold, "for_seconds": for_seconds, "enabled": enabled}
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise fail("nothing to change: give --threshold, --for, --enable or --disable", 2)
    with config.client() as client:
        item = client.update_alert_rule(rule, project=project, **changes)
    show_item(item, output, [(c.lower(), f) for c, f in RULE_COLUMNS])


@rules.command("rm")
def remove_rule(rule: str, project: str = ProjectOption) -> None:
    """Delete a rule and its alerts."""
    with config.client() as client:
        client.remove_alert_rule(rule, project=project)
    typer.echo(f"removed alert rule {rule}")


WEBHOOK_COLUMNS = [
    ("NAME", lambda w: w["name"]),
    ("URL", lambda w: w["url"]),
    ("ENABLED", lambda w: "yes" if w["enabled"] else "no"),
    ("ID", lambda w: w["id"]),
]


@webhooks.command("add")
def add_webhook(
    name: str = typer.Argument(..., help="a name for the receiver"),
    url: str = typer.Argument(..., help="http(s) URL the alerts are POSTed to"),
    project: str = ProjectOption,
    output: Format = OutputOption,
) -> None:
    """Register a webhook; prints its signing secret, which is never shown again."""
    with config.client() as client:
        item = client.add_webhook(name, url, project=project)
    show_item(
        item,
        output,
        [(c.lower(), f) for c, f in WEBHOOK_COLUMNS]
        + [("secret (shown once)", lambda w: w["secret"])],
    )


@webhooks.command("list")
def list_webhooks(project: str = ProjectOption, output: Format = OutputOption) -> None:
    """The project's webhooks (secrets are never shown)."""
    with config.client() as client:
        items = client.webhooks(project)
    show_list(items, WEBHOOK_COLUMNS, output)


@webhooks.command("set")
def set_webhook(
    webhook: str = typer.Argument(..., help="webhook name or id"),
    url: str | None = typer.Option(None, "--url"),
    enabled: bool | None = typer.Option(None, "--enable/--disable"),
    project: str = ProjectOption,
    output: Format = OutputOption,
) -> None:
    """Point a webhook elsewhere, or switch it on or off."""
    changes = {k: v for k, v in {"url": url, "enabled": enabled}.items() if v is not None}
    if not changes:
        raise fail("nothing to change: give --url, --enable or --disable", 2)
    with config.client() as client:
        item = client.update_webhook(webhook, project=project, **changes)
    show_item(item, output, [(c.lower(), f) for c, f in WEBHOOK_COLUMNS])


@webhooks.command("rm")
def remove_webhook(webhook: str, project: str = ProjectOption) -> None:
    """Delete a webhook."""
    with config.client() as client:
        client.remove_webhook(webhook, project=project)
    typer.echo(f"removed webhook {webhook}")


@app.command("list")
def list_alerts(
    project: str = ProjectOption,
    firing: bool = typer.Option(False, "--firing", help="only alerts firing now"),
    limit: int = typer.Option(100, "--limit", min=1, help="at most this many, newest first"),
    output: Format = OutputOption,
) -> None:
    """Alerts, newest first."""
    with config.client() as client:
        items = client.alerts(project, state="firing" if firing else None, limit=limit)
    show_list(
        items,
        [
            ("STATE", lambda a: a["state"]),
            ("RULE", lambda a: a["rule_name"]),
            ("MESSAGE", lambda a: a["message"]),
            ("STARTED", lambda a: ago(a["started_at"])),
            ("RESOLVED", lambda a: ago(a["resolved_at"]) if a["resolved_at"] else "-"),
        ],
        output,
    )
