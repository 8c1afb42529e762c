"""``edgefleet sim``: N virtual devices speaking the real agent protocol."""

from __future__ import annotations

from pathlib import Path

import typer


def sim_command(
    server: list[str] = typer.Option(..., "--server", help="server URL (repeat for replicas)"),
    devices: int = typer.Option(100, "--devices", "-n", min=1, help="how many virtual devices"),
    provisioning_key: str = typer.Option(None, "--provisioning-key", help="enrolls new devices"),
    state_dir: Path = typer.Option(
        None,
        "--state-dir",
        help="identities, reused on the next run (default: a folder per server URL in $TMPDIR)",
    ),
    labels: list[str] = typer.Option([], "--labels", help="spread labels: site=a,b,c (repeat)"),
    heartbeat_interval: float = typer.Option(
        None, "--heartbeat-interval", help="default: the server's"
    ),
    rate: float = typer.Option(0, "--rate", help="devices started per second (0: all at once)"),
    supervise_every: float = typer.Option(
        15.0, "--supervise-every", help="seconds between workload checks"
    ),
    duration: float = typer.Option(None, "--duration", help="stop after this many seconds"),
    fed: bool = typer.Option(
        False,
        "--fed",
        help="devices take part in federated computations on datasets declared "
        "in their state dirs (sim-NNNNN/)",
    ),
) -> None:
    """Simulate a fleet: every device is a real agent with the `sim` runtime."""
    from edgefleet.agent.simulator import default_state_dir, run

    root = state_dir or default_state_dir(list(server))
    code = run(
        list(server),
        devices,
        key=provisioning_key,
        state_dir=root,
        labels=list(labels),
        heartbeat=heartbeat_interval,
        rate=rate,
        supervise_every=supervise_every,
        duration=duration,
        fed=fed,
    )
    raise typer.Exit(code)
