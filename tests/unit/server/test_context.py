"""The server's assembly: one call builds every part the context holds, typed,
and wires them to each other (the hub is the context's device link, both
sealing parts use the one server key, single sign-on only when configured)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from edgefleet.server import assembly
from edgefleet.server.auth.oidc_provider import OidcProvider
from edgefleet.server.bus.base import create_bus
from edgefleet.server.computations.relay import Relay
from edgefleet.server.db.engine import async_url, create_engine
from edgefleet.server.devices_link import DeviceLink
from edgefleet.server.gateway.hub import Hub
from edgefleet.server.registries.service import RegistryAuth
from edgefleet.server.scheduler.loop import Scheduler
from edgefleet.server.settings import ServerSettings
from edgefleet.server.variables.render import WorkloadConfig


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(async_url(None, tmp_path))
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_build_makes_every_part_and_wires_the_hub(
    tmp_path: Path, engine: AsyncEngine
) -> None:
    settings = ServerSettings(data_dir=tmp_path)
    bus = create_bus("memory", {})
    ctx, hub = assembly.build(settings, engine, bus)
    try:
        assert isinstance(hub, Hub)
        link: DeviceLink = hub  # the hub satisfies the Protocol services use (mypy checks)
        assert ctx.hub is link
        assert isinstance(ctx.registry_auth, RegistryAuth)
        assert isinstance(ctx.workload_config, WorkloadConfig)
        assert isinstance(ctx.scheduler, Scheduler)
        assert isinstance(ctx.computations, Relay)
        assert ctx.bus is bus and ctx.engine is engine and ctx.settings is settings
        assert ctx.oidc is None  # no --oidc-issuer
        assert ctx.replica == settings.replica_id
        # one key, made once in the data dir: what one part seals the other opens
        sealed = ctx.registry_auth.box.seal("hunter2")
        assert ctx.workload_config.box.open(sealed) == "hunter2"
        assert (tmp_path / "secret.key").exists()
    finally:
        ctx.limits.close()


async def test_the_key_survives_a_restart(tmp_path: Path, engine: AsyncEngine) -> None:
    settings = ServerSettings(data_dir=tmp_path)
    first, _ = assembly.build(settings, engine, create_bus("memory", {}))
    sealed = first.registry_auth.box.seal("kept")
    first.limits.close()
    second, _ = assembly.build(settings, engine, create_bus("memory", {}))
    try:
        assert second.workload_config.box.open(sealed) == "kept"
    finally:
        second.limits.close()


async def test_single_sign_on_is_built_only_when_configured(
    tmp_path: Path, engine: AsyncEngine
) -> None:
    settings = ServerSettings(
        data_dir=tmp_path, oidc_issuer="https://idp.example.org/", oidc_client_id="edgefleet"
    )
    ctx, _ = assembly.build(settings, engine, create_bus("memory", {}))
    try:
        assert isinstance(ctx.oidc, OidcProvider)
        assert ctx.oidc.config.issuer == "https://idp.example.org"
        assert ctx.oidc.config.client_id == "edgefleet"
    finally:
        assert ctx.oidc is not None
        await ctx.oidc.close()
        ctx.limits.close()
