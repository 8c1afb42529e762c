"""The local API's routes: method and path in, a typed answer out.

    GET    /openapi.json                               the document (openapi.py)
    GET    /status                                     LocalStatus
    GET    /jobs                                       JobList
    GET    /jobs/{job}                                 LocalJob
    GET    /jobs/{job}/services/{service}/logs         text, ?tail=N&follow=1 (chunked)
    POST   /jobs/{job}/services/{service}/{action}     restart | stop | start -> ActionDone
    GET    /desired                                    LocalDesired (secrets named, sealed)
    GET    /backlog                                    Backlog
    GET    /apps   POST /apps   DELETE /apps/{name}    the owner's local apps

Job and service names are checked against a strict pattern before anything
is looked up: a name is never a path, on disk or in the engine.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from pydantic import BaseModel, ValidationError

from edgefleet.agent.http_server import Answer, HttpError, Request, Response, Streamed
from edgefleet.agent.local import schemas as s
from edgefleet.agent.local.http import UnixServer, json_body
from edgefleet.agent.local.openapi import document
from edgefleet.wire.local import LocalActionKind


class LocalApi(Protocol):
    """What the routes call: the local API part (``service.py``), named here
    so that the routes need not import the part that serves them."""

    server: UnixServer | None

    def status(self) -> s.LocalStatus: ...
    def job_list(self) -> list[s.LocalJob]: ...
    def job(self, job_id: str) -> s.LocalJob: ...
    def desired(self) -> s.LocalDesired: ...
    async def backlog(self) -> s.Backlog: ...
    async def logs(
        self, job_id: str, service: str, tail: int | None, follow: bool
    ) -> AsyncIterator[bytes]: ...
    async def act(self, action: LocalActionKind, job_id: str, service: str) -> s.ActionDone: ...
    def app_list(self) -> list[s.LocalApp]: ...
    async def run_app(self, body: s.AppRun) -> s.LocalApp: ...
    async def remove_app(self, name: str) -> None: ...


NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
ACTIONS = ("restart", "stop", "start")
MAX_TAIL = 100_000


def check(kind: str, value: str) -> str:
    if not NAME_RE.match(value):
        raise HttpError(
            400, f"{kind}: {value[:80]!r} is not a {kind} name (letters, digits, '.', '_', '-')"
        )
    return value


def _tail(raw: str | None) -> int | None:
    if raw is None or raw in ("", "all"):
        return None
    if not raw.isdigit() or int(raw) > MAX_TAIL:
        raise HttpError(400, f"tail: {raw[:20]!r} is not a number of lines up to {MAX_TAIL}")
    return int(raw)


def make_handler(api: LocalApi) -> Callable[[Request], Awaitable[Answer]]:
    async def handle(request: Request) -> Answer:
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if request.path.startswith("//") or ".." in parts:
            raise HttpError(400, "path: not a local API path")
        if parts == ["openapi.json"] and method == "GET":
            return Response(200, document())
        if parts == ["status"] and method == "GET":
            return _ok(api.status())
        if parts == ["jobs"] and method == "GET":
            return _ok(s.JobList(items=api.job_list()))
        if parts == ["desired"] and method == "GET":
            return _ok(api.desired())
        if parts == ["backlog"] and method == "GET":
            return _ok(await api.backlog())
        if parts and parts[0] == "jobs":
            return await _job_routes(api, request, parts[1:])
        if parts and parts[0] == "apps":
            return await _app_routes(api, request, parts[1:])
        known = parts[:1] in (["status"], ["jobs"], ["desired"], ["backlog"], ["openapi.json"])
        if known:
            raise HttpError(405, f"{method} is not allowed on {request.path[:100]}")
        raise HttpError(
            404, f"path: no such local API path {request.path[:100]!r}; see /openapi.json"
        )

    return handle


async def _job_routes(api: LocalApi, request: Request, rest: list[str]) -> Answer:
    if not rest:
        raise HttpError(404, "path: no such local API path")
    job = check("job", rest[0])
    if len(rest) == 1 and request.method == "GET":
        return _ok(api.job(job))
    if len(rest) == 4 and rest[1] == "services":
        service = check("service", rest[2])
        verb = rest[3]
        if verb == "logs" and request.method == "GET":
            follow = request.query.get("follow", "") in ("1", "true", "yes")
            lines = await api.logs(job, service, _tail(request.query.get("tail")), follow)
            return Streamed(200, lines)
        if verb in ACTIONS and request.method == "POST":
            return _ok(await api.act(verb, job, service))  # type: ignore[arg-type]
        if verb in (*ACTIONS, "logs"):
            raise HttpError(
                405,
                f"{request.method} is not allowed: {verb} is a "
                f"{'GET' if verb == 'logs' else 'POST'}",
            )
        raise HttpError(404, f"action: {verb[:40]!r} is not one of restart, stop, start, logs")
    raise HttpError(404, "path: no such local API path; see /openapi.json")


async def _app_routes(api: LocalApi, request: Request, rest: list[str]) -> Answer:
    if not rest and request.method == "GET":
        return _ok(s.AppList(items=api.app_list()))
    if not rest and request.method == "POST":
        raw = await request.read(api.server.max_body if api.server else 1 << 20)
        try:
            body = s.AppRun.model_validate(json_body(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(x) for x in first["loc"]) or "body"
            raise HttpError(422, f"{field}: {first['msg']}") from exc
        return _ok(await api.run_app(body), 201)
    if len(rest) == 1 and request.method == "DELETE":
        await api.remove_app(check("name", rest[0]))
        return Response(200, {"removed": rest[0]})
    raise HttpError(
        405 if len(rest) <= 1 else 404,
        f"{request.method} /apps/{'/'.join(rest)[:60]}: not a local apps route",
    )


def _ok(model: BaseModel, status: int = 200) -> Response:
    return Response(status, model.model_dump(mode="json"))
