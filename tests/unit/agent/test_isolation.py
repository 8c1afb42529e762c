"""The isolation firewall: the pure rule computation, the engine's answers
parsed, and the reconciler against a stand-in ``nft`` that keeps its "kernel
table" in a file (so no root is needed)."""

from __future__ import annotations

import asyncio
import ipaddress
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgefleet.agent.engine import NotFound
from edgefleet.agent.isolation import (
    IsolationFirewall,
    JobNet,
    desired,
    parse_compat,
    parse_libpod,
    replace_script,
    table_name,
)


def net(name: str, device: str, bridge: str | None, *subnets: str) -> JobNet:
    return JobNet(name, device, bridge, tuple(ipaddress.ip_network(s) for s in subnets))


A1 = net("ef-j1-deva-r1", "deva", "podman1", "10.89.1.0/24")
A2 = net("ef-j2-deva-r1", "deva", "podman2", "10.89.2.0/24", "fd00:2::/64")
B1 = net("ef-j3-devb-r1", "devb", "podman3", "10.89.3.0/24")


def test_no_network_of_this_device_means_no_table() -> None:
    assert desired("deva", []) is None
    assert desired("deva", [B1]) is None


def test_rules_cover_own_networks_in_both_directions_against_every_edgefleet_network() -> None:
    rules = desired("deva", [B1, A2, A1])
    assert rules is not None
    assert rules.table == "edgefleet_deva"
    # The sets know every edgefleet network on the engine, other devices' too...
    assert rules.bridges == ("podman1", "podman2", "podman3")
    assert rules.nets4 == ("10.89.1.0/24", "10.89.2.0/23")  # collapsed: nft refuses overlaps
    assert rules.nets6 == ("fd00:2::/64",)
    # ...the rules only this device's networks (devb's agent writes its own).
    assert not any("podman3" in r or "10.89.3.0" in r for r in rules.rules)
    text = "\n".join(rules.rules)
    assert 'iifname "podman1" oifname != "podman1" oifname @bridges drop' in text
    assert 'oifname "podman1" iifname != "podman1" iifname @bridges drop' in text
    assert "ip saddr 10.89.1.0/24 ip daddr != 10.89.1.0/24 ip daddr @nets4 drop" in text
    assert "ip daddr 10.89.1.0/24 ip saddr != 10.89.1.0/24 ip saddr @nets4 drop" in text
    assert "ip6 saddr fd00:2::/64 ip6 daddr != fd00:2::/64 ip6 daddr @nets6 drop" in text
    assert len(rules.rules) == 2 + 2 + 2 + 2 + 2  # A1: bridge+v4; A2: bridge+v4+v6
    assert all('comment "edgefleet ef-j' in r for r in rules.rules)


def test_deterministic_whatever_the_engine_order() -> None:
    assert desired("deva", [A1, A2, B1]) == desired("deva", [B1, A2, A1, A1])


def test_subnets_only_when_the_engine_does_not_name_the_bridge() -> None:
    weird = net("ef-x-deva-r1", "deva", 'br"; flush ruleset', "10.89.9.0/24")
    rules = desired("deva", [weird, net("ef-y-deva-r1", "deva", None, "10.89.8.0/24")])
    assert rules is not None
    assert rules.bridges == ()  # a name that cannot be quoted safely is left out
    assert all("ifname" not in r for r in rules.rules)
    assert len(rules.rules) == 4


def test_replace_script_is_one_atomic_transaction() -> None:
    rules = desired("deva", [A1])
    assert rules is not None
    script = replace_script(rules.table, rules)
    assert script.startswith("table inet edgefleet_deva {}\ndelete table inet edgefleet_deva\n")
    assert "hook forward priority -10; policy accept;" in script
    assert replace_script("edgefleet_deva", None).count("\n") == 2
    assert table_name("a-b.c") == "edgefleet_a_b_c"


def test_nft_accepts_the_script() -> None:
    rules = desired("deva", [A1, A2, B1])
    assert rules is not None
    done = subprocess.run(
        ["nft", "-c", "-f", "-"],
        input=replace_script("edgefleet_unittest_check", rules),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_engine_answers_parsed() -> None:
    podman = parse_libpod(
        {
            "name": "ef-j1-deva-r1",
            "network_interface": "podman1",
            "subnets": [{"subnet": "10.89.1.0/24", "gateway": "10.89.1.1"}],
            "labels": {"io.edgefleet.device": "deva"},
        }
    )
    assert podman == A1
    compat = {
        "Name": "ef-j1-deva-r1",
        "Id": "0123456789abcdef",
        "Driver": "bridge",
        "IPAM": {"Config": [{"Subnet": "10.89.1.0/24"}]},
        "Labels": {"io.edgefleet.device": "deva"},
        "Options": {},
    }
    assert parse_compat(compat, podman=False).bridge == "br-0123456789ab"  # Docker's naming
    assert parse_compat(compat, podman=True).bridge is None  # Podman's compat API does not say
    named = dict(compat, Options={"com.docker.network.bridge.name": "ef0"})
    assert parse_compat(named, podman=False).bridge == "ef0"


# -- the reconciler, against a stand-in nft -----------------------------------------------

FAKE_NFT = """\
import sys, pathlib
state = pathlib.Path(sys.argv[0]).with_suffix(".table")
calls = pathlib.Path(sys.argv[0]).with_suffix(".calls")
args = sys.argv[1:]
with calls.open("a") as f:
    f.write(" ".join(args) + "\\n")
if args[:1] == ["list"]:
    if not state.exists():
        sys.exit(1)
    print(state.read_text(), end="")
elif args[:2] == ["-f", "-"]:
    script = sys.stdin.read()
    body = script.split("\\n", 2)[2]  # after "table ... {}" and "delete table ..."
    if body:
        state.write_text(body)
    elif state.exists():
        state.unlink()
"""


class FakeNetworks:
    """The engine client's ``networks`` as the firewall reads them."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def list(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return [dict(item) for item in self.items]


class FakeApi:
    def __init__(self) -> None:
        self.networks = FakeNetworks()


class FakeRuntime:
    def __init__(self) -> None:
        self.client = FakeApi()

    def engine_api(self) -> Any:
        return self.client

    async def is_podman(self) -> bool:
        return False


def compat(name: str, device: str, id_: str, subnet: str) -> dict[str, Any]:
    return {
        "Name": name,
        "Id": id_,
        "Driver": "bridge",
        "IPAM": {"Config": [{"Subnet": subnet}]},
        "Labels": {"io.edgefleet.device": device, "io.edgefleet.managed": "true"},
    }


def test_reconciler_writes_only_on_change_and_restores_what_was_removed(tmp_path: Path) -> None:
    binary = tmp_path / "nft"
    binary.write_text(f"#!{sys.executable}\n{FAKE_NFT}")
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    table, calls = tmp_path / "nft.table", tmp_path / "nft.calls"
    runtime = FakeRuntime()
    firewall = IsolationFirewall(runtime, "deva", binary=str(binary))

    def writes() -> int:
        return calls.read_text().count("-f -") if calls.exists() else 0

    async def scenario() -> None:
        api = runtime.client.networks
        assert await firewall.reconcile()  # nothing yet: the (absent) table is made sure of
        assert not await firewall.reconcile() and not table.exists()
        api.items = [compat("ef-j1-deva-r1", "deva", "aaaaaaaaaaaaaaaa", "10.89.1.0/24")]
        assert await firewall.reconcile()
        assert "br-aaaaaaaaaaaa" in table.read_text()
        assert not await firewall.reconcile()  # unchanged: read, not rewritten
        assert writes() == 2
        table.unlink()  # `nft delete table ...` by hand, or an engine's flush
        assert await firewall.reconcile()
        assert table.exists() and writes() == 3
        table.write_text(table.read_text().replace("drop", "accept"))  # tampered with
        assert await firewall.reconcile()
        assert "accept comment" not in table.read_text()
        api.items.append(compat("ef-j9-devb-r1", "devb", "bbbbbbbbbbbbbbbb", "10.89.2.0/24"))
        assert await firewall.reconcile()  # another device's network joins the sets
        assert "br-bbbbbbbbbbbb" in table.read_text()
        api.items = api.items[1:]
        assert await firewall.reconcile()  # only devb's left: our table goes
        assert not table.exists()
        assert not await firewall.reconcile()

    asyncio.run(scenario())


class PodmanApi(FakeApi):
    def __init__(self, libpod: list[dict[str, Any]] | None) -> None:
        super().__init__()
        self.libpod = libpod

    def json(self, method: str, path: str, params: dict[str, Any], versioned: bool) -> Any:
        assert (method, path, versioned) == ("GET", "/v4.0.0/libpod/networks/json", False)
        assert params["filters"] == {"label": ["io.edgefleet.managed=true"]}
        if self.libpod is None:  # an engine without Podman's own API
            raise NotFound(404, "page not found")
        return self.libpod


class PodmanRuntime(FakeRuntime):
    def __init__(self, libpod: list[dict[str, Any]] | None) -> None:
        self.client = PodmanApi(libpod)

    async def is_podman(self) -> bool:
        return True


def test_podman_bridges_from_its_own_api_else_subnets_only() -> None:
    from edgefleet.agent.isolation import engine_networks

    item = {
        "name": "ef-j1-deva-r1",
        "driver": "bridge",
        "network_interface": "podman1",
        "subnets": [{"subnet": "10.89.1.0/24"}],
        "labels": {"io.edgefleet.device": "deva"},
    }
    assert asyncio.run(engine_networks(PodmanRuntime([item]))) == [A1]
    older = PodmanRuntime(None)  # no libpod API: the compatible one, no bridge names
    older.client.networks.items = [compat("ef-j1-deva-r1", "deva", "aaaa", "10.89.1.0/24")]
    assert asyncio.run(engine_networks(older)) == [
        net("ef-j1-deva-r1", "deva", None, "10.89.1.0/24")
    ]
