"""``edgefleet instances``: your own instances of launchable applications.

An instance runs on one device and opens only for you and the users you
share it with (through the proxy: ``edgefleet instances list`` shows its
URLs); it stops by itself after the application's idle timeout."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from edgefleet.cli import config
from edgefleet.cli.output import Format, OutputOption, ago, fail, show_item, show_list

if TYPE_CHECKING:
    from edgefleet.client import Client
    from edgefleet.client.models import Instance

app = typer.Typer(
    help="Personal instances: launch your own copy of a launchable application, share it, stop it.",
    no_args_is_help=True,
)

_FIELDS = [
    ("id", lambda i: i["id"]),
    ("app", lambda i: f"{i['app']} {i['version']}"),
    ("state", lambda i: i["state"] + (f" ({i['stopped_reason']})" if i["stopped_reason"] else "")),
    ("owner", lambda i: i["owner"]),
    ("shared with", lambda i: ", ".join(i["shared_with"]) or "-"),
    ("device", lambda i: ", ".join(d["device_name"] for d in i["devices"]) or "-"),
    ("idle timeout", lambda i: f"{i['idle_timeout']} s"),
    ("urls", lambda i: " ".join(i["urls"]) or "-"),
]


def _wait_running(client: Client, instance: Instance, timeout: float) -> Instance:
    deadline = time.monotonic() + timeout
    while instance["state"] not in ("running", "failed", "stopped"):
        if time.monotonic() > deadline:
            raise fail(
                f"instance {instance['id']} is still {instance['state']} after {timeout:g} s"
            )
        time.sleep(1.0)
        instance = client.instance(instance["id"])
    if instance["state"] != "running":
        errors = "; ".join(e for d in instance["devices"] if (e := d.get("error")))
        raise fail(f"instance {instance['id']} is {instance['state']}: {errors or 'no detail'}")
    return instance


@app.command("launch")
def launch(
    application: str = typer.Argument(..., metavar="APP", help="a launchable application"),
    version: str | None = typer.Option(None, "--version", help="default: the latest"),
    device: str | None = typer.Option(None, "--device", "-d", help="device id or name"),
    selector: str | None = typer.Option(
        None, "--selector", "-l", help="labels, e.g. site=lab: the first online match is used"
    ),
    wait: float = typer.Option(0, "--wait", help="seconds to wait until it runs (0: don't)"),
    output: Format = OutputOption,
) -> None:
    """Launch your own instance of APP on one device."""
    if device is not None and selector is not None:
        raise fail("give --device or --selector, not both", 2)
    with config.client() as client:
        item = client.launch_instance(
            application, version=version, device=device, selector=selector
        )
        if wait > 0:
            item = _wait_running(client, item, wait)
    show_item(item, output, _FIELDS)


@app.command("list")
def list_instances(output: Format = OutputOption) -> None:
    """Your instances and those shared with you."""
    with config.client() as client:
        items = client.instances()
    show_list(
        items,
        [
            ("ID", lambda i: i["id"]),
            ("APP", lambda i: f"{i['app']} {i['version']}"),
            ("STATE", lambda i: i["state"]),
            ("OWNER", lambda i: i["owner"]),
            ("SHARED WITH", lambda i: ", ".join(i["shared_with"]) or "-"),
            ("LAST USED", lambda i: ago(i["last_access"])),
            ("URL", lambda i: i["urls"][0] if i["urls"] else "-"),
        ],
        output,
    )


@app.command("show")
def show(instance: str, output: Format = OutputOption) -> None:
    """One instance: state, device, who has it, its proxy URLs."""
    with config.client() as client:
        show_item(client.instance(instance), output, _FIELDS)


@app.command("share")
def share(
    instance: str,
    user: str = typer.Option(..., "--user", "-u", help="a member of the instance's project"),
    output: Format = OutputOption,
) -> None:
    """Let another member of the project open your instance."""
    with config.client() as client:
        show_item(client.share_instance(instance, user), output, _FIELDS)


@app.command("unshare")
def unshare(
    instance: str,
    user: str = typer.Option(..., "--user", "-u", help="a user it is shared with"),
    output: Format = OutputOption,
) -> None:
    """Take a share back: the user can no longer open the instance."""
    with config.client() as client:
        show_item(client.unshare_instance(instance, user), output, _FIELDS)


@app.command("stop")
def stop(instance: str, output: Format = OutputOption) -> None:
    """Stop your instance: its workload is removed from the device."""
    with config.client() as client:
        show_item(client.stop_instance(instance), output, _FIELDS)


@app.command("launchable")
def launchable(
    application: str = typer.Argument(..., metavar="APP"),
    idle_timeout: int = typer.Option(
        3600, "--idle-timeout", help="seconds without a request before an instance stops"
    ),
    off: bool = typer.Option(False, "--off", help="no longer launchable"),
    output: Format = OutputOption,
) -> None:
    """Mark APP launchable (developer role and up), or not with --off."""
    with config.client() as client:
        item = client.set_launchable(application, idle_timeout=idle_timeout, launchable=not off)
    show_item(item, output)


@app.command("save")
def save(
    instance: str,
    service: str = typer.Option(..., "--service", "-s", help="the service to commit"),
    as_: str = typer.Option(..., "--as", metavar="APP:VERSION", help="the version to record"),
    registry: str | None = typer.Option(
        None, "--registry", help="registry host to push to (default: the project's only one)"
    ),
    timeout: float = typer.Option(1800, "--timeout", help="seconds to wait for the push"),
    output: Format = OutputOption,
) -> None:
    """Commit a service of your instance on its device, push it to the project's
    registry and record it as APP:VERSION, which others can launch or deploy."""
    from edgefleet.cli.instance_save import follow

    with config.client() as client:
        started = client.save_instance(instance, service, as_, registry)
        item = follow(client, instance, started, timeout, quiet=output != Format.table)
    if item["state"] != "done":
        raise fail(f"saving {instance} as {as_} failed: {item.get('error') or item['state']}")
    show_item(item, output)
