"""The device policy's pure rules that tests/unit/spec/test_policy_enforced.py
does not walk through: which host paths a bind mount may name, and publishing
ports on the device (edgefleet.spec.policy)."""

from __future__ import annotations

from textwrap import dedent

from edgefleet.spec.compose import parse
from edgefleet.spec.model import AppSpec
from edgefleet.spec.policy import DevicePolicy, app_refusals, path_allowed


def one(snippet: str) -> AppSpec:
    spec, findings = parse(dedent(f"services:\n  s:\n    image: x\n    {snippet}\n"))
    assert spec is not None, findings
    return spec


def refused(spec: AppSpec, policy: DevicePolicy | None = None) -> str:
    return "; ".join(app_refusals(spec, policy or DevicePolicy()))


def test_a_path_is_allowed_under_an_allowed_directory_only() -> None:
    allowed = ["/srv/data"]
    assert path_allowed("/srv/data", allowed)
    assert path_allowed("/srv/data/sub/file", allowed)
    assert path_allowed("/srv/data/", allowed)
    # a sibling that merely shares the prefix is not inside it
    assert not path_allowed("/srv/database", allowed)
    assert not path_allowed("/srv", allowed)
    assert not path_allowed("/etc", [])


def test_a_path_cannot_climb_out_of_an_allowed_directory() -> None:
    assert not path_allowed("/srv/data/../../etc/shadow", ["/srv/data"])
    assert path_allowed("/srv/other/../data/x", ["/srv/data"])
    assert path_allowed("/srv/data/x", ["/srv/./data/"])


def test_relative_paths_are_left_to_the_agent() -> None:
    # the server cannot resolve them; the agent checks against its own directory
    assert path_allowed("./local", [])
    assert not path_allowed("/abs", ["relative/prefix"])  # a relative prefix allows nothing here


def test_the_resolver_decides_what_a_path_means() -> None:
    links = {"/data": "/mnt/disk1", "/mnt/disk1": "/mnt/disk1"}
    assert path_allowed("/data", ["/mnt/disk1"], resolve=links.get)
    assert not path_allowed("/data", ["/mnt/disk2"], resolve=lambda p: links.get(p, p))


def test_bind_mounts_of_host_paths_need_the_owners_consent() -> None:
    spec = one("volumes: ['/srv/data/in:/in:ro']")
    assert refused(spec) == (
        "service s: host path /srv/data/in is not allowed on this device "
        "(its agent needs --allow-host-path /srv/data/in or a parent of it)"
    )
    assert refused(spec, DevicePolicy(host_paths=["/srv/data"])) == ""
    assert "host path" in refused(spec, DevicePolicy(host_paths=["/srv/data/out"]))


def test_a_named_volume_is_no_host_path() -> None:
    spec, _ = parse(
        "services:\n  s:\n    image: x\n    volumes: [cache:/cache]\nvolumes:\n  cache: {}\n"
    )
    assert spec is not None and refused(spec) == ""


def test_publishing_ports_on_the_device_needs_the_owners_consent() -> None:
    spec = one("ports: ['8080:80', '9090:90', '8080:81']")
    assert refused(spec) == (
        "service s: publishing port 8080, 9090 on the device is not allowed (its agent needs "
        "--allow-published-ports); without 'published' the port is still reachable through "
        "the proxy"
    )
    assert refused(spec, DevicePolicy(published_ports=True)) == ""
    assert refused(one("ports: ['80']")) == ""  # not published: reached through the proxy
