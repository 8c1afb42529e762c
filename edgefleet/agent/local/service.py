"""The local API part: the socket, the owner's actions, and reporting them.

    owner --unix socket (0660 root:GROUP)--> routes.py --> LocalApi
        status / jobs / desired / backlog   read from Jobs, the state dir, the buffer
        restart / stop / start              the runtime, a hold, the journal
        apps run / rm                       LocalApps -> the change queue
    LocalApi --LocalActions--> server (on every connect, and after each action)
    server --LocalActionsAck--> journal forgets them

Nothing here needs the server: every answer comes from the agent's memory,
its state dir and the engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from edgefleet import __version__
from edgefleet.agent.changes.plan import revision_of
from edgefleet.agent.errors import ConfigError, RuntimeFailure
from edgefleet.agent.http_server import HttpError
from edgefleet.agent.local import schemas as s
from edgefleet.agent.local.apps import LocalApps
from edgefleet.agent.local.holds import Holds
from edgefleet.agent.local.http import UnixServer, bind_socket
from edgefleet.agent.local.journal import Journal
from edgefleet.agent.local.routes import make_handler
from edgefleet.agent.part import AgentContext, MessageHandler
from edgefleet.agent.runtimes.base import Runtime, Workload
from edgefleet.tasks import cancel_all
from edgefleet.wire.local import LOCAL_APP_PREFIX, LocalActionKind, LocalAppFact
from edgefleet.wire.messages import (
    DeviceFacts,
    FactsChanged,
    LocalActions,
    LocalActionsAck,
    Message,
)
from edgefleet.wire.status import JobStatus
from edgefleet.wire.workload import JobAssignment

if TYPE_CHECKING:
    from edgefleet.agent.data.service import DataService

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0
APPS_WATCH_EVERY = 5.0  # seconds between looks at local apps' states (facts to the server)


class LocalApi:
    """The part; ``data`` is the data part when it runs (for the backlog).

    Built before Jobs start: its apps join the assignments, its holds the
    change queue, and held services show as held in the jobs' status."""

    def __init__(self, ctx: AgentContext, data: DataService | None) -> None:
        self.ctx = ctx
        self.jobs = ctx.jobs
        self.data = data
        settings = ctx.settings
        self.path = settings.local_api_socket or settings.state_dir / "agent.sock"
        self.holds = Holds(ctx.state)
        self.journal = Journal(ctx.state, settings.local_actions_max)
        self.apps = LocalApps(ctx.state, settings.local_apps_max)
        self.jobs.local_assignments = self.apps.assignments
        self.jobs.held = self.held
        self.jobs.status_hook = self.status_hook
        self.server: UnixServer | None = None
        self._sent_apps: list[LocalAppFact] = []
        self._watch: asyncio.Task[None] | None = None

    # -- life ---------------------------------------------------------------------------

    def message_handlers(self) -> Mapping[type[Message], MessageHandler]:
        return {LocalActionsAck: self.on_ack}

    async def start(self) -> None:
        try:
            sock = bind_socket(self.path, self.ctx.settings.local_api_group, self.ctx.state.root)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        except OSError as exc:
            # The device's workloads matter more than the owner's console: run
            # without it (say so loudly) rather than not at all.
            log.error(
                "local API not served: cannot listen on %s (%s); give --local-api-socket",
                self.path,
                exc,
            )
            return
        self.server = UnixServer(make_handler(self), self.ctx.settings.local_api_max_body)
        await self.server.listen(sock)
        self._watch = asyncio.create_task(self._watch_apps(), name="local-apps-facts")
        log.info("local API on %s", self.path)

    async def stop(self) -> None:
        if self._watch is not None:
            await cancel_all([self._watch])
        if self.server is not None:
            await self.server.close()
            self.path.unlink(missing_ok=True)

    async def on_connected(self) -> None:
        self._sent_apps = self.app_facts()  # the hello carried them
        await self.report()

    async def _watch_apps(self) -> None:
        """The server sees local apps' states as facts: sent again when they change."""
        while True:
            await asyncio.sleep(APPS_WATCH_EVERY)
            current = self.app_facts()
            if current == self._sent_apps:
                continue
            if await self.ctx.connection.send(FactsChanged(facts=self.ctx.facts())):
                self._sent_apps = current

    async def report(self) -> None:
        """Send what the server has not acknowledged yet (no-op when it is away)."""
        pending = self.journal.pending()
        if pending:
            await self.ctx.connection.send(LocalActions(actions=pending))

    async def on_ack(self, message: LocalActionsAck) -> None:
        self.journal.acknowledged(message.ids)
        if self.journal.pending():
            await self.report()

    # -- hooks into Jobs and facts ---------------------------------------------------------

    def held(self, job_id: str, revision: str) -> set[str]:
        return self.holds.held(job_id, revision)

    def status_hook(self, status: JobStatus) -> JobStatus:
        """Held services show as held locally (not failed), and so does the job."""
        assignment = self.jobs.assignments().get(status.job_id)
        if assignment is None:
            return status
        held = self.holds.held(status.job_id, revision_of(assignment)) & set(status.services)
        if not held:
            return status
        services = dict(status.services)
        for name in held:
            services[name] = services[name].model_copy(
                update={"state": "exited", "error": None, "held_locally": True}
            )
        others = [v.state for k, v in services.items() if k not in held]
        state = status.state
        if state == "failed" and all(v != "failed" for v in others):
            state = "running" if "running" in others else "exited"
        why = "held locally: " + ", ".join(sorted(held)) + " stopped by the device's owner"
        return status.model_copy(
            update={"services": services, "state": state, "waiting": status.waiting or why}
        )

    def facts_hook(self, facts: DeviceFacts) -> DeviceFacts:
        return facts.model_copy(update={"local_apps": self.app_facts()})

    def app_facts(self) -> list[LocalAppFact]:
        found = []
        for name, job_id in sorted(self.apps.names().items()):
            services = {w.service: w.state for w in self.jobs.workloads if w.job_id == job_id}
            found.append(LocalAppFact(name=name, job_id=job_id, services=services))
        return found

    # -- reading ------------------------------------------------------------------------

    def status(self) -> s.LocalStatus:
        identity, connection = self.ctx.identity, self.ctx.connection
        connected = connection.connected.is_set()
        return s.LocalStatus(
            device=s.DeviceInfo(
                id=self.jobs.device_id,
                name=identity.name,
                project=identity.project,
            ),
            connection=s.ConnectionInfo(
                connected=connected,
                server=connection.server if connected else None,
                servers=list(identity.servers),
            ),
            applied_generation=self.jobs.applied_generation,
            runtime_healthy=self.jobs.runtime_healthy,
            runtimes=self.jobs.runtimes.names(),
            jobs=len(self.jobs.assignments()),
            local_apps=len(self.apps.names()),
            actions_unreported=len(self.journal.pending(10_000)),
            agent_version=__version__,
        )

    def job_list(self) -> list[s.LocalJob]:
        wanted = self.jobs.assignments()
        return [
            self._job(wanted[st.job_id], st) for st in self.jobs.statuses() if st.job_id in wanted
        ]

    def job(self, job_id: str) -> s.LocalJob:
        assignment = self._assignment(job_id)
        for status in self.jobs.statuses():
            if status.job_id == job_id:
                return self._job(assignment, status)
        raise HttpError(404, f"job: {job_id} is not on this device")

    def _job(self, a: JobAssignment, status: JobStatus) -> s.LocalJob:
        revision = revision_of(a)
        running = {w.service: w for w in self.jobs.workloads if w.job_id == a.job_id}
        return s.LocalJob(
            id=a.job_id,
            application=a.application,
            local_app=a.job_id.startswith(LOCAL_APP_PREFIX),
            version=a.version,
            revision=revision,
            state=status.state,
            error=status.error,
            waiting=status.waiting,
            services=[
                s.LocalService(
                    name=name,
                    state=svc.state,
                    revision=running[name].revision if name in running else None,
                    held_locally=svc.held_locally,
                    restarts=svc.restarts,
                    exit_code=svc.exit_code,
                    error=svc.error,
                )
                for name, svc in status.services.items()
            ],
        )

    def desired(self) -> s.LocalDesired:
        jobs = []
        for a in self.jobs.assignments().values():
            jobs.append(
                s.DesiredJob(
                    id=a.job_id,
                    application=a.application,
                    version=a.version,
                    revision=revision_of(a),
                    local_app=a.job_id.startswith(LOCAL_APP_PREFIX),
                    services={
                        name: s.DesiredService(
                            image=svc.image,
                            runtime=svc.runtime,
                            secrets=[ref.source for ref in svc.secrets],
                        )
                        for name, svc in a.spec.services.items()
                    },
                    sealed_secrets=sorted(a.secrets),
                )
            )
        return s.LocalDesired(generation=self.jobs.desired_state.generation, jobs=jobs)

    async def backlog(self) -> s.Backlog:
        data = self.data
        if data is None:
            return s.Backlog(streams=[], files_pending=0)
        stats = await data.call(data.buffer.stats)
        files = await data.call(data.buffer.files_pending)
        return s.Backlog(
            streams=[
                s.StreamBacklog(
                    job=x.job,
                    stream=x.stream,
                    pending=x.pending,
                    pending_bytes=x.pending_bytes,
                    accepted=x.accepted,
                    uploaded=x.uploaded,
                    evicted=x.evicted,
                    rejected=x.rejected,
                )
                for x in stats
            ],
            files_pending=sum(files.values()),
        )

    async def logs(
        self, job_id: str, service: str, tail: int | None, follow: bool
    ) -> AsyncIterator[bytes]:
        workload, runtime = await self._workload(job_id, service)
        return _lines(runtime, workload, tail, follow)

    # -- acting -------------------------------------------------------------------------

    async def act(self, action: LocalActionKind, job_id: str, service: str) -> s.ActionDone:
        assignment = self._assignment(job_id)
        if service not in assignment.spec.services:
            raise HttpError(404, f"service: job {job_id} has no service {service!r}")
        revision = revision_of(assignment)
        if action == "start":
            self.holds.release(job_id, service)
            try:
                workload, runtime = await self._workload(job_id, service)
                await runtime.start(workload.id)
            except HttpError:
                self.jobs.queue.want(job_id)  # gone: the change queue recreates it
        else:
            workload, runtime = await self._workload(job_id, service)
            try:
                if action == "stop":
                    self.holds.hold(job_id, service, revision)
                await runtime.stop(workload.id, STOP_TIMEOUT)
                if action == "restart":
                    self.holds.release(job_id, service)
                    await runtime.start(workload.id)
            except RuntimeFailure as exc:
                if action == "stop":
                    self.holds.release(job_id, service)  # not stopped: nothing to hold
                raise HttpError(
                    502, f"the engine refused to {action} {service}: {exc.message}"
                ) from exc
        entry = self.journal.record(action, job_id, service)
        await self._after_change()
        status = next((x for x in self.jobs.statuses() if x.job_id == job_id), None)
        return s.ActionDone(action=entry, status=status)

    async def run_app(self, body: s.AppRun) -> s.LocalApp:
        assignment = self.apps.run(body.name, body.compose, body.version, self.jobs.runtimes)
        self.journal.record("app-run", assignment.job_id, None, f"version {body.version}")
        self.jobs.queue.want(assignment.job_id)
        await self._after_change()
        return self._app(body.name, assignment)

    async def remove_app(self, name: str) -> None:
        job_id = self.apps.remove(name)
        self.holds.forget_job(job_id)
        self.journal.record("app-remove", job_id, None)
        self.jobs.queue.want(job_id)
        await self._after_change()

    def app_list(self) -> list[s.LocalApp]:
        assignments = self.apps.assignments()
        return [
            self._app(name, assignments[job]) for name, job in sorted(self.apps.names().items())
        ]

    def _app(self, name: str, a: JobAssignment) -> s.LocalApp:
        states = {w.service: w.state for w in self.jobs.workloads if w.job_id == a.job_id}
        return s.LocalApp(
            name=name,
            job_id=a.job_id,
            version=a.version,
            services={svc: states.get(svc, "pending") for svc in a.spec.services},
        )

    async def _after_change(self) -> None:
        await self.jobs._observe_and_report()
        await self.report()
        self._sent_apps = self.app_facts()
        await self.ctx.connection.send(FactsChanged(facts=self.ctx.facts()))

    # -- helpers ------------------------------------------------------------------------

    def _assignment(self, job_id: str) -> JobAssignment:
        found = self.jobs.assignments().get(job_id)
        if found is None:
            raise HttpError(404, f"job: {job_id} is not on this device")
        return found

    async def _workload(self, job_id: str, service: str) -> tuple[Workload, Runtime]:
        self._assignment(job_id)
        try:
            return await self.jobs.find_workload(job_id, service)
        except RuntimeFailure as exc:
            raise HttpError(404, f"service: {exc.message}") from exc


async def _lines(
    runtime: Runtime, workload: Workload, tail: int | None, follow: bool
) -> AsyncIterator[bytes]:
    async for line in runtime.logs(workload.id, tail=tail, since=None, follow=follow):
        text = line.text if line.text.endswith("\n") else line.text + "\n"
        yield text.encode("utf-8", "replace")
