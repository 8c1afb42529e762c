"""The agent's data part: the local endpoint, the buffer, the uploader.

    workload --POST--> listener (127.0.0.1, job-network gateways) --> endpoint
        --> submit(incoming, done) --> group commit, on the loop while the disk
            is quick, else on the buffer's thread (commit.py: one journal
            append + fdatasync for all waiting requests)
        --> done(...) on the loop, in order --> 2xx
    uploader --DataBatch--> server --commit--> DataAck --> buffer deletes

The port is chosen once (``--data-port``, or a free one on first start) and
kept in the state dir: URLs are baked into running containers' environment,
so it must not change across agent restarts. Listeners on gateway addresses
are opened lazily, because a bridge's address exists only while a container
runs on it; a pass every ``LISTEN_EVERY`` seconds binds new ones and closes
those whose network is gone.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from edgefleet.agent import facts
from edgefleet.agent.changes.plan import revision_of
from edgefleet.agent.data import context, networks
from edgefleet.agent.data.buffer import Buffer
from edgefleet.agent.data.commit import RETRY_AFTER, Done, GroupCommit
from edgefleet.agent.data.endpoint import FastRecords, make_handler
from edgefleet.agent.data.errors import BufferError
from edgefleet.agent.data.http import Server
from edgefleet.agent.data.journal import fsync_dir
from edgefleet.agent.data.records import Incoming, Stored
from edgefleet.agent.data.uploader import Uploader
from edgefleet.agent.http_server import HttpError
from edgefleet.agent.part import AgentContext, MessageHandler
from edgefleet.agent.runtimes.base import network_name
from edgefleet.agent.state import atomic_write
from edgefleet.wire.messages import DataAck, Message, Peripheral

log = logging.getLogger(__name__)
T = TypeVar("T")


LISTEN_EVERY = 2.0
PRUNE_EVERY = 1800  # listener passes between prunings of old record ids (an hour)


def _loopback(peer: str) -> bool:
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


def _within(subnet: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Callable[[str], bool]:
    def allow(peer: str) -> bool:
        try:
            return ipaddress.ip_address(peer) in subnet
        except ValueError:
            return False

    return allow


class DataService:
    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.dir = ctx.state.root / "data"
        self.dir.mkdir(mode=0o700, exist_ok=True)
        self.secret = self._load_secret()
        self._tokens: dict[str, str] = {}  # job -> its token, once one was shown valid
        self.port = self._load_port(settings.data_port)
        self.buffer = Buffer(
            self.dir / "buffer.db", settings.data_quota_mb * 1024 * 1024, settings.data_evict_oldest
        )
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="data-buffer")
        self._listeners: dict[str, Server] = {}
        self._listening = asyncio.Lock()  # one pass at a time: hooks and the loop
        self._gateways: dict[str, str] = {}  # network name -> gateway
        self._tasks: list[asyncio.Task[None]] = []
        self.uploader = Uploader(self, ctx.connection)
        self.commit = GroupCommit(self.buffer, self._thread, self.uploader.kick)
        self.handler = make_handler(self)
        self.fast = FastRecords(self)

    def message_handlers(self) -> Mapping[type[Message], MessageHandler]:
        return {DataAck: self.uploader.on_ack}

    # -- identity of URLs -----------------------------------------------------------------

    def _load_secret(self) -> bytes:
        path = self.dir / "secret"
        try:
            return bytes.fromhex(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            secret = os.urandom(32)  # what secrets.token_bytes does, without loading it
            atomic_write(path, secret.hex().encode(), 0o600)
            return secret

    def _load_port(self, configured: int) -> int:
        if configured:
            return configured
        path = self.dir / "port"
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int(path.read_text().strip())
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        atomic_write(path, str(port).encode(), 0o600)
        return port

    def token(self, job: str) -> str:
        digest = hmac.new(self.secret, job.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode()

    def job_for(self, job: str, token: str) -> bool:
        """Whether ``token`` is ``job``'s. A token once shown valid is kept, so a
        workload's every POST does not pay an HMAC; only valid ones are kept,
        so the cache grows with jobs, not with what callers send."""
        expected = self._tokens.get(job)
        if expected is None:
            expected = self.token(job)
            if not hmac.compare_digest(expected, token):
                return False
            self._tokens[job] = expected
        return hmac.compare_digest(expected, token)

    def url(self, job: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/v1/{job}/{self.token(job)}"

    async def env(self, job_id: str, service: str) -> dict[str, str]:
        """Env hook: ``EDGEFLEET_DATA_URL`` and ``EDGEFLEET_CONTEXT_URL`` for one
        workload, listened on before the workload starts (it may post the moment
        it runs). Both carry the job's token: a job reads only its own context."""
        host = await self._host_for(job_id, service)
        if host not in self._listeners and host != networks.FALLBACK_HOST:
            await self._listen_once()
        url = self.url(job_id, host)
        return {"EDGEFLEET_DATA_URL": url, "EDGEFLEET_CONTEXT_URL": f"{url}/context"}

    async def _host_for(self, job_id: str, service: str) -> str:
        jobs = self.ctx.jobs
        assignment = jobs.assignments().get(job_id)
        if assignment is None or service not in assignment.spec.services:
            return "127.0.0.1"
        spec = assignment.spec.services[service]
        if spec.runtime == "process" or spec.network_mode == "host":
            return "127.0.0.1"
        first = next(iter(spec.networks or {"default": []}))
        name = network_name(job_id, jobs.device_id, revision_of(assignment), first)
        if name not in self._gateways:
            runtime = self.ctx.runtimes.container
            gateway = await asyncio.to_thread(networks.gateway_now, runtime, name)
            if gateway is None:
                return networks.FALLBACK_HOST
            self._gateways[name] = gateway
        return self._gateways[name]

    # -- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        self.commit.start()
        self._tasks = [
            asyncio.create_task(self._listen_loop(), name="data-listeners"),
            asyncio.create_task(self.uploader.run(), name="data-uploader"),
            asyncio.create_task(self.uploader.report_loop(), name="data-backlog"),
        ]
        await self._listen_once()
        log.info(
            "data endpoint on port %d (buffer: %d records waiting)", self.port, self.buffer.pending
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        ended = await asyncio.gather(*self._tasks, return_exceptions=True)
        for task, result in zip(self._tasks, ended, strict=True):
            if isinstance(result, Exception):  # it died before the stop: say how, once
                log.error("data endpoint: %s had failed", task.get_name(), exc_info=result)
        for server in self._listeners.values():
            await server.close()
        self._listeners.clear()
        await self.commit.stop()  # the last groups are answered before the buffer closes
        await self.call(self.buffer.close)
        self._thread.shutdown(wait=True)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a buffer method on the buffer's own thread, holding the buffer's
        lock (the loop may write a group itself while it is free: commit.py)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, self._locked, fn, *args
        )

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self.buffer.lock:
            return fn(*args)

    # -- listeners ------------------------------------------------------------------------

    async def _listen_loop(self) -> None:
        passes = 0
        while True:
            await asyncio.sleep(LISTEN_EVERY)
            try:
                await self._listen_once()
                passes += 1
                if passes % PRUNE_EVERY == 0:
                    await self.call(self.buffer.prune_ids)
            except (OSError, sqlite3.Error):  # an address gone mid-pass, a busy disk: next pass
                log.exception("data endpoint: listener pass failed")

    async def _listen_once(self) -> None:
        async with self._listening:
            await self._listen_pass()

    async def _listen_pass(self) -> None:
        found = await networks.job_networks(self.ctx.runtimes.container, self.ctx.jobs.device_id)
        wanted: dict[str, Callable[[str], bool]] = {"127.0.0.1": _loopback}
        for net in found:
            self._gateways[net.name] = net.gateway
            wanted[net.gateway] = _within(net.subnet)
        for address in list(self._listeners):
            if address not in wanted:
                await self._listeners.pop(address).close()
                log.info("data endpoint: closed %s:%d", address, self.port)
        for address, allow in wanted.items():
            if address in self._listeners:
                continue
            server = Server(self.handler, allow, self.fast)
            try:
                await server.listen(address, self.port)
            except OSError as exc:
                # Should not happen with IP_FREEBIND; an engine oddity: next pass.
                log.debug("data endpoint: cannot listen on %s:%d yet: %s", address, self.port, exc)
                continue
            self._listeners[address] = server
            log.info("data endpoint: listening on %s:%d", address, self.port)
        known = {net.name for net in found}
        for name in list(self._gateways):
            if name not in known:
                self._gateways.pop(name, None)

    # -- writing (Store) ------------------------------------------------------------------

    async def store(self, incoming: Incoming) -> Stored:
        return await self.commit.store(incoming)

    def submit(self, incoming: Incoming, done: Done, alone: bool = False) -> None:
        self.commit.submit(incoming, done, alone)

    async def store_file(self, job: str, name: str, body: AsyncIterator[bytes], size: int) -> int:
        try:
            await self.call(self.buffer.reserve, size)
        except BufferError as exc:
            raise HttpError(507, exc.message, {"retry-after": RETRY_AFTER}) from None
        path = self.buffer.file_path(uuid.uuid4().hex)
        digest = hashlib.sha256()
        received = 0
        try:
            with open(path, "wb") as out:
                async for chunk in body:
                    received += len(chunk)
                    if received > size:
                        raise HttpError(400, "the body is longer than its Content-Length")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                await self.call(os.fsync, out.fileno())
            if received != size:
                raise HttpError(400, f"the body ended after {received} of {size} bytes")
            await self.call(fsync_dir, path.parent)
            seq = await self.call(self.buffer.add_file, job, name, path, size, digest.hexdigest())
        except BufferError as exc:
            path.unlink(missing_ok=True)
            raise HttpError(507, exc.message, {"retry-after": RETRY_AFTER}) from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self.uploader.kick()
        return seq

    async def backlog(self, job: str) -> dict[str, Any]:
        stats = await self.call(self.buffer.stats)
        files = await self.call(self.buffer.files_pending)
        return {
            "job": job,
            "streams": [
                {
                    "stream": s.stream,
                    "pending": s.pending,
                    "accepted": s.accepted,
                    "uploaded": s.uploaded,
                    "evicted": s.evicted,
                    "rejected": s.rejected,
                }
                for s in stats
                if s.job == job
            ],
            "files_pending": files.get(job, 0),
        }

    async def context(self, job: str) -> dict[str, Any]:
        """The job's context, from the desired state on disk and the agent's own
        peripherals and policy (no server needed)."""
        jobs = self.ctx.jobs
        assignment = jobs.assignments().get(job)
        if assignment is None:
            raise HttpError(404, f"job {job} is not on this device (any more)")
        settings = self.ctx.settings

        def peripherals() -> list[Peripheral]:
            discovered = facts.discovered_peripherals()
            reported = discovered + facts.declared_peripherals(settings.peripheral)
            policy = facts.device_policy(settings, discovered)
            return context.visible_peripherals(reported, policy)

        built = context.build(
            jobs.device_id,
            self.ctx.identity.name,
            assignment,
            revision_of(assignment),
            await asyncio.to_thread(peripherals),
        )
        return built.model_dump(mode="json")

    async def lock(self, job: str, action: str) -> dict[str, Any]:
        """The job's update lock (agent/changes/locks.py): only a job on this device has one."""
        jobs = self.ctx.jobs
        if job not in jobs.assignments():
            raise HttpError(404, f"job {job} is not on this device (any more)")
        return jobs.lock(job, action).model_dump(mode="json")
