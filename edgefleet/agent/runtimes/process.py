"""The ``process`` runtime: supervised child processes, for devices with no
container engine (like Nomad's exec driver, without the isolation).

Off unless the device's owner turns it on (``--allow-process`` or ``--runtime
process``): a process runs on the device itself. What keeps it from the
agent's secrets (``device.json``, the data endpoint's secret, registry
passwords in ``desired.json``):

- it runs as the owner's ``--process-user`` (default ``nobody`` when the agent
  is root), never with the agent's uid unless the owner chose so;
- its working directory is the agent's choice, ``<work root>/<job>`` (default
  ``<state-dir>-work``, never inside the state dir), owned by that user, 0700;
- the state dir is 0700 and the agent's bookkeeping stays in it: the agent
  opens the logs and the exit-code file and hands the process only their
  descriptors.

An agent that is not root can only run processes as itself; then a process
can read what the agent can (documented as the residual risk).

Limits, best effort: ``prlimit`` (util-linux) sets RLIMIT_DATA (memory) and
RLIMIT_NPROC (processes) before the wrapper starts. RLIMIT_NPROC counts every
process of the user, not of the job, so it is set only when processes run as
a user other than the agent's (root ignores it anyway).

Each workload's bookkeeping is in ``<root>/<name>/``: ``meta.json`` (what to
run, the pid and its kernel start time, restarts), ``stdout.log``,
``stderr.log`` and ``exit_code``. Processes run in their own session and write
to files, not pipes, so they survive the agent being killed; a restarted agent
adopts them by pid + start time (so a recycled pid is never mistaken for ours).
A small ``sh`` wrapper writes the exit code to a descriptor the agent opened,
since an adopted process is not our child and cannot be waited on.

The runtime also plays the engine's part for restart policies: its monitor
restarts exited processes per ``restart`` with a growing delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from edgefleet.agent.errors import RuntimeFailure
from edgefleet.agent.execs import ExecRequest, HostExec
from edgefleet.agent.runtimes import process_logs
from edgefleet.agent.runtimes.process_book import Book, as_workload, start_ticks
from edgefleet.agent.runtimes.process_user import ProcessUser, own_name
from edgefleet.agent.runtimes.workload import (
    LABEL_JOB,
    LogLine,
    Workload,
    WorkloadSpec,
)
from edgefleet.spec.policy import DevicePolicy, limits

WRAPPER = 'trap "" HUP; "$@"; code=$?; echo $code >&"$EF_EXIT_FD"; exit $code'
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ")

log = logging.getLogger(__name__)


def _signal_number(name: str | None) -> int:
    if not name:
        return signal.SIGTERM
    name = name.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    return int(getattr(signal, name, signal.SIGTERM))


class ProcessRuntime:
    name = "process"

    def __init__(
        self,
        root: Path,
        policy: DevicePolicy,
        work: Path,
        *,
        monitor_every: float = 1.0,
    ) -> None:
        """``root``: bookkeeping, inside the state dir; ``work``: the processes'
        working directories, outside it (see :func:`work_root`)."""
        self.root = root
        self._book = Book(root)
        self.policy = policy
        self.user = ProcessUser.named(policy.process_user or own_name())
        if self.user.uid == os.geteuid():
            log.warning(
                "process services run as %s, the agent's own user: they can read the agent's "
                "state dir (its credential); give --process-user another user to keep them out",
                self.user.name,
            )
        self.work = work
        self.work.mkdir(parents=True, exist_ok=True)
        os.chmod(self.work, 0o711)  # others may enter their own dir, not list the rest
        self._prlimit = shutil.which("prlimit")
        if self._prlimit is None:
            log.warning("prlimit not found: process services run without memory/process limits")
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._monitor: asyncio.Task[None] | None = None
        self._monitor_every = monitor_every
        self._failing: set[str] = set()  # workloads the monitor could not check or restart
        self._lock = asyncio.Lock()
        self.device_id = ""

    def _alive(self, meta: dict[str, Any]) -> bool:
        pid = meta.get("pid")
        if not pid:
            return False
        child = self._children.get(meta["id"])
        if child is not None and child.poll() is not None:
            return False
        return start_ticks(pid) == meta.get("ticks")

    def _workload(self, meta: dict[str, Any]) -> Workload:
        return as_workload(meta, self._alive(meta), self._book.exit_code(meta["id"]))

    # -- Runtime --------------------------------------------------------------------------

    async def ping(self) -> bool:
        self._ensure_monitor()
        return True

    async def workloads(self, job_id: str | None = None) -> list[Workload]:
        self._ensure_monitor()
        result = []
        for path in sorted(self.root.glob("*/meta.json")):
            meta = self._book.meta(path.parent.name)
            if meta is None:
                continue
            if job_id is not None and meta["labels"].get(LABEL_JOB) != job_id:
                continue
            result.append(self._workload(meta))
        return result

    async def prepare(self, spec: WorkloadSpec, auth: dict[str, dict[str, str]]) -> None:
        argv = self._argv(spec)
        program = argv[0]
        if "/" in program:
            found = os.access(program, os.X_OK)
        else:
            found = (
                shutil.which(program, path=spec.environment.get("PATH") or os.environ.get("PATH"))
                is not None
            )
        if not found:
            raise RuntimeFailure(
                f"service {spec.service_name}: command {program!r} not found on this device"
            )

    def _argv(self, spec: WorkloadSpec) -> list[str]:
        argv = [*(spec.service.entrypoint or []), *(spec.service.command or [])]
        if not argv:
            raise RuntimeFailure(f"service {spec.service_name}: a process service needs a command")
        return argv

    def _workdir(self, job_id: str) -> Path:
        """The job's working directory, chosen here (never by the job), owned by
        the process user and closed to everyone else."""
        if "/" in job_id or job_id.startswith("."):
            raise RuntimeFailure(f"invalid job id {job_id!r}")
        path = self.work / job_id
        path.mkdir(mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(path, self.user.uid, self.user.gid)
        os.chmod(path, 0o700)
        return path

    async def create(self, spec: WorkloadSpec) -> str:
        workload_id = spec.name
        if self._book.meta(workload_id) is not None:
            return workload_id
        if not self.policy.process:  # choose_runtimes does not build us then; belt and braces
            raise RuntimeFailure("the process runtime is not allowed on this device")
        if spec.files:  # the spec refuses them at upload; an older server may not
            raise RuntimeFailure(
                f"service {spec.service_name}: secrets and configs need a container runtime"
            )
        directory = self._book.dir(workload_id)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        cwd = str(self._workdir(spec.job_id))
        env = {k: os.environ[k] for k in SAFE_ENV if k in os.environ}
        env.update(HOME=cwd, USER=self.user.name, LOGNAME=self.user.name)
        env.update(spec.environment)
        memory, pids = limits(spec.service, self.policy)
        self._book.save(
            workload_id,
            {
                "id": workload_id,
                "labels": spec.labels,
                "argv": self._argv(spec),
                "env": env,
                "cwd": cwd,
                "restart": spec.service.restart,
                "max_attempts": spec.service.restart_max_attempts,
                "stop_signal": spec.service.stop_signal,
                "grace": spec.service.stop_grace_period,
                "restarts": 0,
                "pid": None,
                "memory": memory,
                "pids": pids,
            },
        )
        return workload_id

    async def start(self, workload_id: str) -> None:
        self._ensure_monitor()
        async with self._lock:
            meta = self._book.meta(workload_id)
            if meta is None:
                raise RuntimeFailure(f"no such workload {workload_id}")
            if self._alive(meta):
                return
            self._spawn(meta)

    def _limits_argv(self, meta: dict[str, Any]) -> list[str]:
        if self._prlimit is None:
            return []
        argv = [self._prlimit]
        if meta.get("memory"):
            argv.append(f"--data={meta['memory']}")
        if meta.get("pids") and self.user.uid != os.geteuid():
            # RLIMIT_NPROC counts every process of the user: as the agent's own
            # user (or root, which ignores it) it would count the wrong ones.
            argv.append(f"--nproc={meta['pids']}")
        return [*argv, "--"] if len(argv) > 1 else []

    def _spawn(self, meta: dict[str, Any]) -> None:
        directory = self._book.dir(meta["id"])
        exit_file = directory / "exit_code"
        with contextlib.suppress(FileNotFoundError):
            exit_file.unlink()
        exit_fd = os.open(exit_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        env = dict(meta["env"], EF_EXIT_FD=str(exit_fd))
        argv = [*self._limits_argv(meta), "/bin/sh", "-c", WRAPPER, "sh", *meta["argv"]]
        try:
            with (
                open(directory / "stdout.log", "ab") as out,
                open(directory / "stderr.log", "ab") as err,
            ):
                child = subprocess.Popen(
                    argv,
                    cwd=meta["cwd"],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    pass_fds=(exit_fd,),
                    start_new_session=True,
                    **self.user.popen_args(),
                )
        except OSError as exc:
            raise RuntimeFailure(f"cannot start {meta['argv'][0]}: {exc}") from exc
        finally:
            os.close(exit_fd)
        self._children[meta["id"]] = child
        meta.update(pid=child.pid, ticks=start_ticks(child.pid), started=time.time(), stopped=False)
        meta.pop("restart_due", None)
        self._book.save(meta["id"], meta)

    async def stop(self, workload_id: str, timeout: float) -> None:
        meta = self._book.meta(workload_id)
        if meta is None:
            return
        meta["stopped"] = True
        meta.pop("restart_due", None)
        self._book.save(workload_id, meta)
        if not self._alive(meta):
            return
        pid = meta["pid"]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, _signal_number(meta.get("stop_signal")))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._alive(meta):
            await asyncio.sleep(0.05)
        if self._alive(meta):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while self._alive(meta):
                await asyncio.sleep(0.02)
        self._reap(workload_id)

    def _reap(self, workload_id: str) -> None:
        child = self._children.pop(workload_id, None)
        if child is not None:
            try:
                child.wait(timeout=1)
            except subprocess.TimeoutExpired:  # the wrapper lingers: the monitor reaps it later
                log.debug("workload %s: its process has not exited yet", workload_id)

    async def remove(self, workload_id: str) -> None:
        meta = self._book.meta(workload_id)
        if meta is None:
            return
        await self.stop(workload_id, float(meta.get("grace") or 10))
        shutil.rmtree(self._book.dir(workload_id), ignore_errors=True)

    def logs(
        self, workload_id: str, *, tail: int | None, since: datetime | None, follow: bool
    ) -> AsyncIterator[LogLine]:
        return process_logs.read(
            self._book.dir(workload_id),
            tail,
            follow,
            lambda: self._book.meta(workload_id) is not None,
        )

    # -- CanExec, CanExecInteractive ------------------------------------------------------

    async def exec(
        self, workload_id: str, argv: list[str], env: dict[str, str], timeout: float
    ) -> tuple[int, bytes, bytes]:
        meta = self._book.meta(workload_id)
        if meta is None:
            raise RuntimeFailure(f"no such workload {workload_id}")
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=meta["cwd"],
            env={**meta["env"], **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            **self.user.popen_args(),
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            raise
        return process.returncode or 0, out, err

    async def exec_session(self, workload_id: str, request: ExecRequest) -> HostExec:
        meta = self._book.meta(workload_id)
        if meta is None:
            raise RuntimeFailure(f"no such workload {workload_id}")
        try:
            return await HostExec.start(
                request.argv,
                env={**meta["env"], **request.env},
                cwd=meta["cwd"],
                tty=request.tty,
                cols=request.cols,
                rows=request.rows,
                user=self.user.ids if self.user.popen_args() else None,
            )
        except OSError as exc:
            raise RuntimeFailure(f"cannot run {request.argv[0]}: {exc}") from exc

    # -- restart policies -----------------------------------------------------------------

    def _ensure_monitor(self) -> None:
        if self._monitor is None or self._monitor.done():
            with contextlib.suppress(RuntimeError):
                self._monitor = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._monitor_every)
            for path in list(self.root.glob("*/meta.json")):
                workload_id = path.parent.name
                try:
                    await self._check(workload_id)
                    self._failing.discard(workload_id)
                except (RuntimeFailure, OSError) as exc:
                    # A restart that cannot start (the command is gone) or bookkeeping
                    # removed meanwhile: tried again next round, said once until it heals.
                    if workload_id not in self._failing:
                        self._failing.add(workload_id)
                        log.warning("process monitor: %s: %s", workload_id, exc)

    async def _check(self, workload_id: str) -> None:
        async with self._lock:
            meta = self._book.meta(workload_id)
            if meta is None or not meta.get("pid") or meta.get("stopped") or self._alive(meta):
                return
            self._reap(workload_id)
            code = self._book.exit_code(workload_id)
            policy = meta.get("restart", "no")
            wants = policy in ("always", "unless-stopped") or (policy == "on-failure" and code != 0)
            limit = meta.get("max_attempts")
            if not wants or (limit is not None and meta.get("restarts", 0) >= limit):
                return
            due = meta.get("restart_due")
            now = time.time()
            if due is None:
                delay = min(30.0, 0.5 * 2 ** min(meta.get("restarts", 0), 6))
                meta["restart_due"] = now + delay
                self._book.save(workload_id, meta)
                return
            if now < due:
                return
            meta["restarts"] = meta.get("restarts", 0) + 1
            self._spawn(meta)
