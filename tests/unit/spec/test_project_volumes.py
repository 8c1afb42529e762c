"""Project volumes in Compose and the device policy (issue 21): the syntax,
what a Compose file may not say, and that only the server-bound name of a
project volume passes the policy's rule against ``ef-`` volumes."""

from __future__ import annotations

from textwrap import dedent

import pytest

from edgefleet.spec.compose import SpecInvalid, parse
from edgefleet.spec.model import AppSpec
from edgefleet.spec.policy import DevicePolicy, app_refusals


def app(volumes: str) -> AppSpec:
    text = (
        dedent(
            """
        services:
          a:
            image: busybox
            volumes: ["data:/data"]
        volumes:
        """
        )
        + volumes
    )
    spec, _ = parse(text)
    return spec


def test_project_volume_syntax() -> None:
    spec = app("  data: {external: true, x-edgefleet-project-volume: true}\n")
    assert spec.volumes["data"].project and spec.volumes["data"].external
    assert spec.volumes["data"].name is None  # the server names it


@pytest.mark.parametrize(
    "declared",
    [
        "  data: {x-edgefleet-project-volume: true}\n",  # not external
        "  data: {external: true, x-edgefleet-project-volume: true, name: ef-proj-pother-data}\n",
    ],
)
def test_project_volume_cannot_be_named_or_internal(declared: str) -> None:
    with pytest.raises(SpecInvalid) as refused:
        app(declared)
    assert "x-edgefleet-project-volume" in str(refused.value.findings)


def test_only_the_bound_project_volume_passes_the_policy() -> None:
    policy = DevicePolicy()
    bound = app("  data: {external: true, x-edgefleet-project-volume: true}\n")
    bound.volumes["data"].name = "ef-proj-pabc123-data"  # what server/volumes binds
    assert app_refusals(bound, policy) == []
    # another project's volume, named by hand: an external ef- volume, refused
    stolen = app("  data: {external: true, name: ef-proj-pother-data}\n")
    assert stolen.volumes["data"].project is False
    assert any("named like a job's own volume" in r for r in app_refusals(stolen, policy))
    # the flag alone (a forged spec) with a name that is not a project volume's: refused
    forged = app("  data: {external: true, x-edgefleet-project-volume: true}\n")
    forged.volumes["data"].name = "ef-j123-dev-data"
    assert app_refusals(forged, policy)
