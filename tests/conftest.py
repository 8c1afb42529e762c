"""Fixtures that start real things: servers, agents, PostgreSQL, Podman."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import postgres, templates
from tests.support.procs import AgentProc, Proc, ServerProc, kill_process_workloads, stop_all

ARTIFACTS = Path(__file__).parent / ".artifacts"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


class Fleet:
    """A server and agents for one test; everything is stopped at teardown."""

    def __init__(self, workdir: Path, database_url: str | None) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.procs: list[Proc] = []
        self.server: ServerProc | None = None

    def start_server(self, **kwargs: Any) -> ServerProc:
        kwargs.setdefault("database_url", self.database_url)
        server = ServerProc(self.workdir, **kwargs)
        self.procs.append(server)
        server.start()
        if self.server is None:
            self.server = server
        return server

    def key(self, project: str = "default", labels: dict[str, str] | None = None, **kw: Any) -> str:
        assert self.server is not None
        with self.server.client() as client:
            return str(client.create_key(project, labels=labels or {}, **kw)["key"])

    def start_agent(
        self, name: str, *, key: str | None = None, servers: list[str] | None = None, **kwargs: Any
    ) -> AgentProc:
        assert self.server is not None
        agent = AgentProc(
            self.workdir,
            servers or [self.server.url],
            key=key if key is not None else self.key(),
            name=name,
            **kwargs,
        )
        self.procs.append(agent)
        agent.start()
        return agent

    def logs(self) -> str:
        return "\n".join(f"===== {p.name} =====\n{p.log()[-6000:]}" for p in self.procs)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The store's backends: every test using this runs on both."""
    if request.param == "sqlite":
        yield None
        return
    admin = postgres.ensure_server()
    url, name = templates.postgres_database(admin)  # already migrated: see templates
    yield url
    postgres.drop_database(admin, name)


@pytest.fixture
def sqlite_only() -> None:
    return None


@pytest.fixture
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    url = (
        request.getfixturevalue("database_url") if "database_url" in request.fixturenames else None
    )
    fleet = Fleet(tmp_path, url)
    yield fleet
    stop_all(fleet.procs)
    kill_process_workloads(tmp_path)
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"{request.node.name}.log").write_text(fleet.logs())
        print(fleet.logs()[-20000:])


@pytest.fixture(scope="session")
def podman_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Podman engine on a private socket, with the busybox test image."""
    from tests.support.podman import PodmanService, ensure_image

    workdir = tmp_path_factory.mktemp("podman")
    service = PodmanService(workdir)
    service.start()
    ensure_image(workdir)
    service.cleanup()
    yield service
    service.cleanup()
    service.stop()


@pytest.fixture
def engine(podman_engine: Any) -> Iterator[Any]:
    """Per test: the shared engine, cleaned afterwards."""
    yield podman_engine
    podman_engine.cleanup()
