"""The progress bar of ``edgefleet instances save``: the server relays what
the device's engine reports while it pushes (layers and bytes); this polls
``GET /instances/{id}/saves/{save}`` and draws it on stderr, so ``-o json``
on stdout stays a clean document."""

from __future__ import annotations

import time

from edgefleet.cli import output
from edgefleet.cli.output import fail
from edgefleet.client.client import Client
from edgefleet.client.models import InstanceSave

SETTLED = ("done", "failed")


def follow(
    client: Client, instance: str, save: InstanceSave, timeout: float, *, quiet: bool
) -> InstanceSave:
    """Poll the save until it is done or failed; the last answer."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    deadline = time.monotonic() + timeout
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[layers]}"),
        console=output.err_console,
        disable=quiet,
        transient=False,
    ) as bar:
        task = bar.add_task(f"saving {save['app']}:{save['version']}", total=None, layers="")
        while True:
            progress = save["progress"]
            bar.update(
                task,
                total=progress["bytes_total"] or None,
                completed=progress["bytes_done"],
                description=f"{save['state']} {save['app']}:{save['version']}",
                layers=f"{progress['layers_done']}/{progress['layers_total']} layers",
            )
            if save["state"] in SETTLED:
                return save
            if time.monotonic() > deadline:
                raise fail(
                    f"save {save['id']} is still {save['state']} after {timeout:g} s; "
                    f"see edgefleet instances show {instance}"
                )
            time.sleep(0.5)
            save = client.instance_save(instance, save["id"])
