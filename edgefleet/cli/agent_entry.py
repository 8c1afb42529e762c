"""``edgefleet agent ...`` with only what the agent needs loaded."""

from __future__ import annotations

import typer

from edgefleet.cli.processes import register_agent


def main() -> None:
    app = typer.Typer(
        name="edgefleet", pretty_exceptions_enable=False, add_completion=False, no_args_is_help=True
    )

    @app.callback()
    def root() -> None:
        """edgefleet: the device daemon."""

    register_agent(app)
    app(prog_name="edgefleet")
