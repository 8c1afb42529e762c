"""The simulator's per-device settings, copied from one validated settings
object per label set: each device must still get exactly what validating its
own settings would give (its name, its state dir, its labels), and nothing a
copy shares may leak from one device to another."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from pathlib import Path

import pytest

from edgefleet.agent.settings import AgentSettings
from edgefleet.agent.simulator import SimFleet, device_settings, simulate


def _fleet(tmp_path: Path, devices: int) -> SimFleet:
    return SimFleet(
        servers=["http://127.0.0.1:8400/"],
        devices=devices,
        key="efk_test",
        state_dir=tmp_path,
        labels=["site=a,b,c", "tier=x"],
        heartbeat=10.0,
        rate=0,
        supervise_every=30,
    )


def test_each_device_gets_what_its_own_validated_settings_would_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGEFLEET_RECONNECT_MAX_DELAY", "7")  # the environment still counts
    built = list(device_settings(_fleet(tmp_path, 5)))

    assert [s.name for s in built] == [f"sim-{i:05d}" for i in range(5)]
    assert [s.labels["site"] for s in built] == ["a", "b", "c", "a", "b"]
    for i, settings in enumerate(built):
        alone = AgentSettings(
            server=["http://127.0.0.1:8400/"],
            provisioning_key="efk_test",
            state_dir=tmp_path / f"sim-{i:05d}",
            name=f"sim-{i:05d}",
            label=[f"site={'abc'[i % 3]}", "tier=x"],
            allow_process=True,
            heartbeat_interval=10.0,
        )
        assert settings.model_dump() == alone.model_dump()
    assert built[0].reconnect_max_delay == 7
    assert len({s.state_dir for s in built}) == 5


def test_devices_spread_their_first_server_over_the_replicas(tmp_path: Path) -> None:
    """With several servers, each device lists every one, starting at a
    different one in turn: the simulated fleet spreads over the replicas."""
    servers = ["http://r1:8400", "http://r2:8400", "http://r3:8400"]
    fleet = dataclasses.replace(_fleet(tmp_path, 7), servers=servers)
    built = list(device_settings(fleet))
    firsts = [s.server[0] for s in built]
    assert firsts == [servers[i % 3] for i in range(7)]
    assert all(sorted(s.server) == servers for s in built)  # each can still move to any
    assert built[4].server == ["http://r2:8400", "http://r3:8400", "http://r1:8400"]


async def test_the_built_fleet_is_frozen_without_a_full_collection(tmp_path: Path) -> None:
    """After building its agents the simulator freezes them as they are: the one
    full collection is settle()'s at start-up, none walks the agents just built."""
    fleet = SimFleet(
        servers=["http://127.0.0.1:9"],
        devices=40,
        key=None,  # not enrolled, no key: each agent stops at once (counted as failed)
        state_dir=tmp_path,
        labels=[],
        heartbeat=10.0,
        rate=0,
        supervise_every=30,
        report_every=60,
    )
    full: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            full.append(gc.get_freeze_count())

    stop = asyncio.Event()
    asyncio.get_running_loop().call_soon(stop.set)  # at the first yield: all 40 are built
    gc.callbacks.append(count)
    try:
        stats = await simulate(fleet, stop)
        frozen = gc.get_freeze_count()
    finally:
        gc.callbacks.remove(count)
        gc.unfreeze()
    assert len(stats.agents) == 40 and stats.failed == 40
    assert len(full) == 1  # settle() at start-up, before any agent existed
    # connections are tenured like the server's sessions while the fleet runs
    assert stats.tenure is not None and stats.tenure.members == stats.connected
    assert stats.tenure._collected not in gc.callbacks  # and no longer once it stopped
    assert frozen > full[0] + 40  # the agents built since were frozen too
