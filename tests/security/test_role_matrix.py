"""A hostile-user sweep over every route: right role, right project, or nothing.

Each route of the server (read from the app's own route table, so a route
added later without a row here fails :func:`test_every_route_has_a_rule`) has
a rule: who may use it (anyone, any signed-in user, administrators, or a
permission of the resource's project, from ``server/auth/roles.py``'s
``GRANTS``). Every rule is tried, for real, by:

- no token and a garbage token: 401 (WebSockets: close 4401);
- each role of project P: 403 naming the role when it lacks the permission,
  and for reads it holds, an answer (never 401/403/404);
- the owner of project Q on P's resources: 404, as if they did not exist
  (SPEC, Auth); on list routes, none of P's ids in the answer.

Mutations are sent only by callers who must be refused; at the end the
estate (``conftest.Estate.snapshot``) must be exactly as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from edgefleet.server.auth.roles import GRANTS, Permission, Role
from tests.security.conftest import APP_SPEC, OUTSIDER, PASSWORD, ROLES, Estate, P, user_name

PUBLIC, USER, ADMIN, OTHERS = "public", "user", "admin", "others"
OWNERS = "owners"  # administrators and owners of some project (each sees their own)
ANON, GARBAGE = "anonymous", "garbage"
GARBAGE_TOKEN = "eft_not-a-real-token-at-all"
CALLERS = (ANON, GARBAGE, *ROLES, OUTSIDER)
PROXY_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

Value = Callable[[Estate], Any]


@dataclass(frozen=True)
class Rule:
    """One probe of one route: how to fill it and who may use it.

    ``need`` is PUBLIC (no credential; not probed), USER (anyone signed in),
    ADMIN (administrators only: 403 for everyone else), OTHERS (someone else's
    resource: 404 for everyone else) or a :class:`Permission` in project P.
    """

    method: str
    path: str
    need: str | Permission
    params: dict[str, Value] = field(default_factory=dict)
    query: dict[str, Value] = field(default_factory=dict)
    body: Value | None = None
    lists: tuple[Value, ...] = ()  # P's ids the outsider must not see in the answer
    absent: bool = False  # no such resource even in P: 404 for everyone allowed

    def url(self, estate: Estate) -> str:
        path = self.path
        for name, value in self.params.items():
            path = re.sub(r"\{" + name + r"(:path)?\}", str(value(estate)), path)
        return path

    def query_for(self, estate: Estate) -> dict[str, str]:
        return {k: str(v(estate)) for k, v in self.query.items()}


def attr(name: str) -> Value:
    return lambda estate: getattr(estate, name)


def const(value: Any) -> Value:
    return lambda _estate: value


A = "/api/v1"
DEV = {"device": attr("device")}
JOB = {"job": attr("job")}
APP = {"app": attr("app")}
PROJ = {"project": const(P)}
RESV = {"reservation": attr("reservation")}
WORKLOAD = {"device": attr("device"), "service": const("web")}


def admin_token_id(estate: Estate) -> str:
    return estate.token_ids["admin"]


API_RULES: list[Rule] = [
    Rule("GET", f"{A}/health", PUBLIC),
    # Prometheus scrapes: admin tokens (or --metrics-token, tests/e2e/test_metrics.py) only;
    # its labels name every project.
    Rule("GET", "/metrics", ADMIN),
    Rule("GET", f"{A}/users", ADMIN),
    Rule("POST", f"{A}/users", ADMIN, body=const({"name": "sec-intruder", "admin": True})),
    Rule("GET", f"{A}/users/me", USER),
    Rule("GET", f"{A}/users/{{user}}", OTHERS, {"user": const("admin")}),
    Rule(
        "PUT",
        f"{A}/users/{{user}}/password",
        OTHERS,
        {"user": const("admin")},
        body=const({"password": "pwned-pwned-pwned", "current_password": PASSWORD}),
    ),
    Rule("DELETE", f"{A}/users/{{user}}", ADMIN, {"user": const(user_name("owner"))}),
    Rule("GET", f"{A}/tokens", USER, lists=(admin_token_id,)),
    Rule("GET", f"{A}/tokens", ADMIN, query={"all": const("true")}),
    Rule("POST", f"{A}/tokens", ADMIN, body=const({"user": "admin", "name": "stolen"})),
    Rule("DELETE", f"{A}/tokens/{{token_id}}", OTHERS, {"token_id": admin_token_id}),
    Rule("POST", f"{A}/tokens/{{token_id}}/revoke", OTHERS, {"token_id": admin_token_id}),
    Rule("GET", f"{A}/projects", USER, lists=(const(P),)),
    Rule("POST", f"{A}/projects", ADMIN, body=const({"name": "sec-rogue"})),
    Rule("GET", f"{A}/projects/{{project}}", Permission.READ, PROJ),
    Rule("DELETE", f"{A}/projects/{{project}}", Permission.MANAGE_MEMBERS, PROJ),
    Rule("GET", f"{A}/projects/{{project}}/members", Permission.READ, PROJ),
    Rule(
        "POST",
        f"{A}/projects/{{project}}/members",
        Permission.MANAGE_MEMBERS,
        PROJ,
        body=const({"user": user_name(OUTSIDER), "role": "owner"}),
    ),
    Rule(
        "PUT",
        f"{A}/projects/{{project}}/members/{{user}}",
        Permission.MANAGE_MEMBERS,
        {**PROJ, "user": const(user_name("viewer"))},
        body=const({"role": "owner"}),
    ),
    Rule(
        "DELETE",
        f"{A}/projects/{{project}}/members/{{user}}",
        Permission.MANAGE_MEMBERS,
        {**PROJ, "user": const(user_name("owner"))},
    ),
    Rule("POST", f"{A}/provisioning-keys", Permission.MANAGE_KEYS, body=const({"project": P})),
    Rule("GET", f"{A}/provisioning-keys", USER, lists=(attr("key_id"),)),
    Rule("GET", f"{A}/provisioning-keys/{{key_id}}", Permission.READ, {"key_id": attr("key_id")}),
    Rule(
        "DELETE",
        f"{A}/provisioning-keys/{{key_id}}",
        Permission.MANAGE_KEYS,
        {"key_id": attr("key_id")},
    ),
    Rule(
        "POST",
        f"{A}/provisioning-keys/{{key_id}}/revoke",
        Permission.MANAGE_KEYS,
        {"key_id": attr("key_id")},
    ),
    Rule("GET", f"{A}/fleet", USER, lists=(attr("device"),)),
    Rule("GET", f"{A}/devices", USER, lists=(attr("device"),)),
    Rule("GET", f"{A}/devices/{{device}}", Permission.READ, DEV),
    Rule(
        "PATCH",
        f"{A}/devices/{{device}}",
        Permission.MANAGE_DEVICES,
        DEV,
        body=const({"labels": {"tier": "prod"}, "name": "pwned"}),
    ),
    Rule("DELETE", f"{A}/devices/{{device}}", Permission.MANAGE_DEVICES, DEV),
    Rule("GET", f"{A}/events", USER, lists=(attr("device"), attr("job"))),
    Rule("GET", f"{A}/events/stream", USER),  # read up to its headers only: it never ends
    Rule("GET", f"{A}/devices/{{device}}/events", Permission.READ, DEV),
    Rule("GET", f"{A}/jobs/{{job}}/events", Permission.READ, JOB),
    Rule("POST", f"{A}/agent/enroll", PUBLIC),
    Rule(
        "POST",
        f"{A}/projects/{{project}}/registries",
        Permission.MANAGE_REGISTRIES,
        PROJ,
        body=const({"registry": "evil.example.test", "username": "x", "password": "y"}),
    ),
    Rule("GET", f"{A}/projects/{{project}}/registries", Permission.READ, PROJ),
    Rule(
        "DELETE",
        f"{A}/projects/{{project}}/registries/{{registry}}",
        Permission.MANAGE_REGISTRIES,
        {**PROJ, "registry": attr("registry")},
    ),
    # Project secrets, variables and configs (issue 19). No secret or variable
    # exists in P: members reading one get 404 like the outsider.
    Rule(
        "POST",
        f"{A}/projects/{{project}}/secrets",
        Permission.MANAGE_SECRETS,
        PROJ,
        body=const({"name": "stolen", "value": "x"}),
    ),
    Rule("GET", f"{A}/projects/{{project}}/secrets", Permission.READ, PROJ),
    # -- shared testbed (issue 20): loans, reservations, declared peripherals --
    Rule(
        "POST",
        f"{A}/devices/{{device}}/loans",
        Permission.MANAGE_DEVICES,
        DEV,
        body=const({"project": "sec-q"}),
    ),
    Rule("GET", f"{A}/devices/{{device}}/loans", Permission.READ, DEV),
    Rule(
        "DELETE",
        f"{A}/devices/{{device}}/loans/{{project}}",
        Permission.MANAGE_DEVICES,
        {**DEV, "project": const("sec-q")},
    ),
    Rule(
        "POST",
        f"{A}/reservations",
        Permission.MANAGE_APPS,
        body=lambda e: {
            "project": P,
            "devices": [e.device],
            "start": "2030-01-01T00:00:00Z",
            "end": "2030-01-01T01:00:00Z",
        },
    ),
    Rule("GET", f"{A}/reservations", USER, lists=(attr("reservation"),)),
    Rule("GET", f"{A}/reservations/{{reservation}}", Permission.READ, RESV),
    Rule(
        "PATCH",
        f"{A}/reservations/{{reservation}}",
        Permission.MANAGE_APPS,
        RESV,
        body=const({"end": "2031-01-01T00:00:00Z"}),
    ),
    Rule("DELETE", f"{A}/reservations/{{reservation}}", Permission.MANAGE_APPS, RESV),
    Rule("GET", f"{A}/projects/{{project}}/device-requirements", Permission.READ, PROJ),
    Rule(
        "PUT",
        f"{A}/projects/{{project}}/device-requirements",
        Permission.MANAGE_DEVICES,
        PROJ,
        body=const({"items": [{"selector": "", "peripherals": ["camera"]}]}),
    ),
    # -- end of the shared testbed --
    Rule(
        "GET",
        f"{A}/projects/{{project}}/secrets/{{name}}",
        Permission.READ,
        {**PROJ, "name": const("none")},
        absent=True,
    ),
    Rule(
        "PUT",
        f"{A}/projects/{{project}}/secrets/{{name}}",
        Permission.MANAGE_SECRETS,
        {**PROJ, "name": const("stolen")},
        body=const({"value": "x"}),
    ),
    Rule(
        "DELETE",
        f"{A}/projects/{{project}}/secrets/{{name}}",
        Permission.MANAGE_SECRETS,
        {**PROJ, "name": const("none")},
    ),
    Rule("GET", f"{A}/projects/{{project}}/variables", Permission.READ, PROJ),
    Rule(
        "GET",
        f"{A}/projects/{{project}}/variables/{{name}}",
        Permission.READ,
        {**PROJ, "name": const("NONE")},
        absent=True,
    ),
    Rule(
        "PUT",
        f"{A}/projects/{{project}}/variables/{{name}}",
        Permission.MANAGE_VARIABLES,
        {**PROJ, "name": const("STOLEN")},
        body=const({"value": "x"}),
    ),
    Rule(
        "DELETE",
        f"{A}/projects/{{project}}/variables/{{name}}",
        Permission.MANAGE_VARIABLES,
        {**PROJ, "name": const("NONE")},
    ),
    Rule("GET", f"{A}/devices/{{device}}/variables", Permission.READ, DEV),
    Rule(
        "GET",
        f"{A}/devices/{{device}}/variables/{{name}}",
        Permission.READ,
        {**DEV, "name": const("NONE")},
        absent=True,
    ),
    Rule(
        "PUT",
        f"{A}/devices/{{device}}/variables/{{name}}",
        Permission.MANAGE_VARIABLES,
        {**DEV, "name": const("STOLEN")},
        body=const({"value": "x"}),
    ),
    Rule(
        "DELETE",
        f"{A}/devices/{{device}}/variables/{{name}}",
        Permission.MANAGE_VARIABLES,
        {**DEV, "name": const("NONE")},
    ),
    Rule("POST", f"{A}/applications/validate", USER, body=const({"spec": APP_SPEC})),
    Rule(
        "POST",
        f"{A}/applications",
        Permission.MANAGE_APPS,
        body=const({"project": P, "name": "sec-evil", "version": "1", "spec": APP_SPEC}),
    ),
    Rule("GET", f"{A}/applications", USER, lists=(attr("app"),)),
    Rule("GET", f"{A}/applications/{{app}}", Permission.READ, APP),
    Rule("DELETE", f"{A}/applications/{{app}}", Permission.MANAGE_APPS, APP),
    Rule("GET", f"{A}/applications/{{app}}/versions", Permission.READ, APP),
    Rule(
        "POST",
        f"{A}/applications/{{app}}/versions",
        Permission.MANAGE_APPS,
        APP,
        body=const({"version": "2", "spec": APP_SPEC}),
    ),
    Rule(
        "GET",
        f"{A}/applications/{{app}}/versions/{{version}}",
        Permission.READ,
        {**APP, "version": attr("version")},
    ),
    Rule(
        "POST",
        f"{A}/jobs",
        Permission.MANAGE_APPS,
        body=lambda e: {"application": e.app, "version": e.version, "devices": [e.device]},
    ),
    Rule("GET", f"{A}/jobs", USER, lists=(attr("job"),)),
    Rule("GET", f"{A}/jobs/{{job}}", Permission.READ, JOB),
    Rule("GET", f"{A}/jobs/{{job}}/devices", Permission.READ, JOB),
    Rule(
        "PATCH",
        f"{A}/jobs/{{job}}",
        Permission.MANAGE_APPS,
        JOB,
        body=const({"environment": {"X": "1"}}),
    ),
    Rule("DELETE", f"{A}/jobs/{{job}}", Permission.MANAGE_APPS, JOB),
    Rule("POST", f"{A}/jobs/{{job}}/cancel", Permission.MANAGE_APPS, JOB),
    # staged rollouts (issue 19): operator controls of a job's rollout
    Rule("POST", f"{A}/jobs/{{job}}/rollout/pause", Permission.MANAGE_APPS, JOB),
    Rule("POST", f"{A}/jobs/{{job}}/rollout/resume", Permission.MANAGE_APPS, JOB),
    Rule("POST", f"{A}/jobs/{{job}}/rollout/abort", Permission.MANAGE_APPS, JOB),
    Rule("POST", f"{A}/jobs/{{job}}/rollout/override-locks", Permission.MANAGE_APPS, JOB),
    # periodic jobs (issue 19): a job's runs, read like the job itself
    Rule("GET", f"{A}/jobs/{{job}}/runs", Permission.READ, JOB),
    Rule(
        "POST",
        f"{A}/devices/{{device}}/exec",
        Permission.EXEC_DEVICE,
        DEV,
        body=const({"command": ["id"]}),
    ),
    Rule(
        "POST",
        f"{A}/jobs/{{job}}/exec",
        Permission.EXEC_WORKLOAD,
        JOB,
        body=lambda e: {"command": ["id"], "device": e.device, "service": "web"},
    ),
    Rule("GET", f"{A}/audit/exec", USER, lists=(attr("device"),)),
    Rule("GET", f"{A}/jobs/{{job}}/logs", Permission.READ, JOB, query={"tail": const(5)}),
    Rule(
        "GET",
        f"{A}/devices/{{device}}/logs",
        Permission.MANAGE_DEVICES,
        DEV,
        query={"tail": const(5)},
    ),
    Rule(
        "POST",
        f"{A}/devices/{{device}}/actions/{{action}}",
        Permission.MANAGE_DEVICES,
        {**DEV, "action": const("restart")},
    ),
    Rule(
        "POST",
        f"{A}/computations",
        Permission.COMPUTE,
        body=lambda e: {
            "project": P,
            "dataset": "d",
            "op": "sum",
            "column": "v",
            "devices": [e.device],
        },
    ),
    Rule("GET", f"{A}/computations", USER),
    # No computation or file exists in P: members get 404 too, the outsider still must.
    Rule(
        "GET",
        f"{A}/computations/{{computation}}",
        Permission.READ,
        {"computation": const("c-none")},
        absent=True,
    ),
    Rule("GET", f"{A}/datasets", USER, lists=(attr("device"),)),
    Rule("GET", f"{A}/jobs/{{job}}/data", Permission.READ, JOB),
    Rule("GET", f"{A}/jobs/{{job}}/data/summary", Permission.READ, JOB),
    Rule("GET", f"{A}/jobs/{{job}}/files", Permission.READ, JOB),
    Rule(
        "GET",
        f"{A}/jobs/{{job}}/files/{{file}}",
        Permission.READ,
        {**JOB, "file": const("f-none")},
        absent=True,
    ),
    Rule(
        "GET",
        f"{A}/jobs/{{job}}/files/{{file}}/content",
        Permission.READ,
        {**JOB, "file": const("f-none")},
        absent=True,
    ),
    # -- agent releases and over-the-air agent upgrades (issue 18) --
    Rule(
        "POST",
        f"{A}/agent-releases",
        ADMIN,
        query={"version": const("9.9.9"), "sha256": const("0" * 64)},
        body=const({}),
    ),
    Rule("GET", f"{A}/agent-releases", USER),
    # devices only (DEVICE_ONLY, defined with the WebSocket rules below)
    Rule(
        "GET",
        f"{A}/agent-releases/{{version}}/wheel",
        "device credential",
        {"version": const("9.9.9")},
    ),
    Rule(
        "POST",
        f"{A}/devices/upgrade-agent",
        Permission.MANAGE_DEVICES,
        body=lambda e: {"version": "9.9.9", "devices": [e.device]},
    ),
    Rule("GET", f"{A}/agent-upgrades", USER),
    Rule(
        "GET",
        f"{A}/agent-upgrades/{{upgrade}}",
        Permission.READ,
        {"upgrade": const("upg-none")},
        absent=True,
    ),
    # -- end of agent upgrades --
    # -- build contexts (issue 21, images built on the device): upload by app managers,
    # fetched only by devices assigned to the job that names the context --
    Rule(
        "POST",
        f"{A}/build-contexts",
        Permission.MANAGE_APPS,
        query={"project": const(P)},
        body=const({}),
    ),
    Rule(
        "GET",
        f"{A}/agent/build-contexts/{{job}}/{{digest}}",
        "device credential",
        {**JOB, "digest": const("sha256:" + "0" * 64)},
    ),
    # -- end of build contexts --
    # The app proxy: only members of the job's project get through (SPEC).
    *(
        Rule(
            method,
            path,
            Permission.READ,
            {**JOB, **WORKLOAD, "port": const(8080), "path": const("x")},
        )
        for method in PROXY_METHODS
        for path in (
            "/proxy/{job}/{device}/{service}/{port}",
            "/proxy/{job}/{device}/{service}/{port}/{path:path}",
        )
    ),
    # -- personal instances (issue 21): launchable apps, instances owned by one user.
    # No instance exists in P: an instance is its owner's, 404 to everyone else.
    Rule("GET", f"{A}/applications/{{app}}/launchable", Permission.READ, APP),
    Rule(
        "PUT",
        f"{A}/applications/{{app}}/launchable",
        Permission.MANAGE_APPS,
        APP,
        body=const({"launchable": True, "idle_timeout": 60}),
    ),
    Rule("POST", f"{A}/instances", Permission.MANAGE_APPS, body=lambda e: {"app": e.app}),
    Rule("GET", f"{A}/instances", USER),
    Rule("GET", f"{A}/instances/{{instance}}", OTHERS, {"instance": const("i-none")}),
    Rule(
        "POST",
        f"{A}/instances/{{instance}}/share",
        OTHERS,
        {"instance": const("i-none")},
        body=const({"user": "admin"}),
    ),
    Rule(
        "DELETE",
        f"{A}/instances/{{instance}}/share/{{user}}",
        OTHERS,
        {"instance": const("i-none"), "user": const("admin")},
    ),
    Rule("POST", f"{A}/instances/{{instance}}/stop", OTHERS, {"instance": const("i-none")}),
    # instance save (issue 21 part D): the instance is its owner's, 404 to everyone else
    Rule(
        "POST",
        f"{A}/instances/{{instance}}/save",
        OTHERS,
        {"instance": const("i-none")},
        body=const({"service": "web", "as": "stolen:1"}),
    ),
    Rule(
        "GET",
        f"{A}/instances/{{instance}}/saves/{{save}}",
        OTHERS,
        {"instance": const("i-none"), "save": const("s-none")},
    ),
    # project volumes (issue 21): storage that outlives a job
    Rule(
        "POST",
        f"{A}/projects/{{project}}/volumes",
        Permission.MANAGE_APPS,
        PROJ,
        body=const({"name": "stolen"}),
    ),
    Rule("GET", f"{A}/projects/{{project}}/volumes", Permission.READ, PROJ),
    # No volume exists in P: members allowed get 404 like the outsider.
    Rule(
        "GET",
        f"{A}/projects/{{project}}/volumes/{{name}}",
        Permission.READ,
        {**PROJ, "name": const("none")},
        absent=True,
    ),
    Rule(
        "DELETE",
        f"{A}/projects/{{project}}/volumes/{{name}}",
        Permission.MANAGE_APPS,
        {**PROJ, "name": const("none")},
    ),
    Rule(
        "GET",
        f"{A}/projects/{{project}}/volumes/{{name}}/archive",
        Permission.MANAGE_APPS,
        {**PROJ, "name": const("none")},
        query={"device": attr("device")},
        absent=True,
    ),
    # -- end of personal instances --
    # -- device telemetry (issue 18): members read a device's health, others get 404 --
    Rule("GET", f"{A}/devices/{{device}}/metrics", Permission.READ, DEV),
    # -- end of device telemetry --
    # -- alerts (issue 18): rules and webhooks per project; owners/operators manage them --
    Rule(
        "POST",
        f"{A}/projects/{{project}}/alert-rules",
        Permission.MANAGE_DEVICES,
        PROJ,
        body=const({"name": "stolen", "kind": "job_failed"}),
    ),
    Rule("GET", f"{A}/projects/{{project}}/alert-rules", Permission.READ, PROJ),
    Rule(
        "GET",
        f"{A}/projects/{{project}}/alert-rules/{{rule}}",
        Permission.READ,
        {**PROJ, "rule": const("none")},
        absent=True,
    ),
    Rule(
        "PATCH",
        f"{A}/projects/{{project}}/alert-rules/{{rule}}",
        Permission.MANAGE_DEVICES,
        {**PROJ, "rule": const("none")},
        body=const({"enabled": False}),
    ),
    Rule(
        "DELETE",
        f"{A}/projects/{{project}}/alert-rules/{{rule}}",
        Permission.MANAGE_DEVICES,
        {**PROJ, "rule": const("none")},
    ),
    Rule(
        "POST",
        f"{A}/projects/{{project}}/webhooks",
        Permission.MANAGE_DEVICES,
        PROJ,
        body=const({"name": "stolen", "url": "http://evil.example.test/hook"}),
    ),
    Rule("GET", f"{A}/projects/{{project}}/webhooks", Permission.READ, PROJ),
    Rule(
        "GET",
        f"{A}/projects/{{project}}/webhooks/{{webhook}}",
        Permission.READ,
        {**PROJ, "webhook": const("none")},
        absent=True,
    ),
    Rule(
        "PATCH",
        f"{A}/projects/{{project}}/webhooks/{{webhook}}",
        Permission.MANAGE_DEVICES,
        {**PROJ, "webhook": const("none")},
        body=const({"enabled": False}),
    ),
    Rule(
        "DELETE",
        f"{A}/projects/{{project}}/webhooks/{{webhook}}",
        Permission.MANAGE_DEVICES,
        {**PROJ, "webhook": const("none")},
    ),
    Rule("GET", f"{A}/projects/{{project}}/alerts", Permission.READ, PROJ),
    # -- end of alerts --
]


DEVICE_ONLY = "device credential"
WS_RULES: list[Rule] = [
    Rule("WS", f"{A}/agent/connect", DEVICE_ONLY),
    Rule("WS", f"{A}/devices/{{device}}/exec/ws", Permission.EXEC_DEVICE, DEV),
    Rule(
        "WS",
        f"{A}/jobs/{{job}}/exec/ws",
        Permission.EXEC_WORKLOAD,
        JOB,
        query={"device": attr("device"), "service": const("web")},
    ),
    Rule(
        "WS",
        f"{A}/devices/{{device}}/forward/ws",
        Permission.EXEC_DEVICE,
        DEV,
        query={"port": const(22), "check": const("true")},
    ),
    Rule(
        "WS",
        f"{A}/jobs/{{job}}/forward/ws",
        Permission.READ,
        JOB,
        query={
            "device": attr("device"),
            "service": const("web"),
            "port": const(8080),
            "check": const("true"),
        },
    ),
    Rule(
        "WS",
        "/proxy/{job}/{device}/{service}/{port}/{path:path}",
        Permission.READ,
        {**JOB, **WORKLOAD, "port": const(8080), "path": const("ws")},
    ),
]

PORTAL_FORM = {"name": "pwned", "labels": "tier=prod", "metadata": "{}", "confirm": "yes"}
PORTAL_RULES: list[Rule] = [
    *(
        Rule("GET", path, PUBLIC)
        for path in (
            "/api/openapi.json",
            "/api/docs",
            "/docs/oauth2-redirect",
            "/login",
            "/favicon.ico",
        )
    ),
    Rule("POST", "/login", PUBLIC),
    Rule("POST", "/logout", PUBLIC),
    Rule("MOUNT", "/portal/static", PUBLIC),
    Rule("GET", "/proxy-auth", PUBLIC),  # signs in to an app host; covered by the proxy's own tests
    # Single sign-on (OIDC, issue 20): sign-in steps, no credential yet by nature; their attacks
    # (state, nonce, forged tokens, open redirects, code replay) are tests/security/test_oidc.py.
    Rule("GET", f"{A}/auth/oidc", PUBLIC),
    Rule("POST", f"{A}/auth/oidc/token", PUBLIC),
    Rule("POST", f"{A}/auth/oidc/device", PUBLIC),
    Rule("POST", f"{A}/auth/oidc/device/token", PUBLIC),
    Rule("GET", "/auth/oidc/login", PUBLIC),
    Rule("GET", "/auth/oidc/cli", PUBLIC),
    Rule("GET", "/auth/oidc/callback", PUBLIC),
    *(
        Rule("GET", path, USER, lists=lists)
        for path, lists in (
            ("/", (attr("device"),)),
            ("/portal/fragments/dashboard", (attr("device"),)),
            ("/devices", (attr("device"),)),
            ("/portal/fragments/devices", (attr("device"),)),
            ("/apps", (attr("app"),)),
            ("/jobs", (attr("job"),)),
            ("/portal/fragments/jobs", (attr("job"),)),
            ("/jobs/new", (attr("app"),)),
            ("/keys", (attr("key_id"),)),
            ("/tokens", (admin_token_id,)),
            ("/projects", (const(P),)),
            ("/portal/live", ()),
            ("/reservations", (attr("reservation"),)),
        )
    ),
    # The audit: administrators and owners, of the projects they own.
    *(
        Rule("GET", path, OWNERS, lists=(attr("device"), attr("job")))
        for path in ("/audit", "/portal/fragments/audit")
    ),
    Rule("GET", "/devices/{device}", Permission.READ, DEV),
    Rule("GET", "/portal/fragments/devices/{device}", Permission.READ, DEV),
    # -- shared testbed portal (issue 20): calendar, booking, lend/revoke on the device page --
    Rule(
        "POST",
        "/reservations",
        Permission.MANAGE_APPS,
        body=lambda e: {
            "project": P,
            "devices": e.device,
            "start": "2030-01-01T00:00",
            "end": "2030-01-01T01:00",
            "action": "book",
        },
    ),
    Rule(
        "POST", "/reservations/{reservation}/cancel", Permission.MANAGE_APPS, RESV, body=const({})
    ),
    Rule(
        "POST",
        "/devices/{device}/loans",
        Permission.MANAGE_DEVICES,
        DEV,
        body=const({"project": "sec-q"}),
    ),
    Rule(
        "POST",
        "/devices/{device}/loans/{project}/revoke",
        Permission.MANAGE_DEVICES,
        {**DEV, "project": const("sec-q")},
        body=const({}),
    ),
    # -- end of the shared testbed portal --
    Rule("POST", "/devices/{device}/edit", Permission.MANAGE_DEVICES, DEV, body=const(PORTAL_FORM)),
    Rule(
        "POST",
        "/devices/{device}/actions/{action}",
        Permission.MANAGE_DEVICES,
        {**DEV, "action": const("reboot")},
        body=const(PORTAL_FORM),
    ),
    Rule(
        "POST",
        "/apps",
        Permission.MANAGE_APPS,
        body=const({"project": P, "name": "sec-evil", "version": "1", "compose": "services: {}"}),
    ),
    Rule("GET", "/apps/{app}", Permission.READ, APP),
    # -- personal instances portal (issue 21): "My instances", Launch, share, stop --
    Rule("GET", "/instances", USER),
    Rule("POST", "/instances/launch", Permission.MANAGE_APPS, body=lambda e: {"app": e.app}),
    Rule(
        "POST",
        "/instances/{instance}/share",
        OTHERS,
        {"instance": const("i-none")},
        body=const({"user": "admin"}),
    ),
    Rule("POST", "/instances/{instance}/stop", OTHERS, {"instance": const("i-none")}),
    # -- end of personal instances portal --
    # -- agent upgrades portal (issue 18): releases, rollouts, the upgrade form --
    Rule("GET", "/agent-upgrades", USER),
    Rule(
        "GET",
        "/agent-upgrades/{upgrade}",
        Permission.READ,
        {"upgrade": const("upg-none")},
        absent=True,
    ),
    Rule(
        "POST",
        "/agent-upgrades",
        Permission.MANAGE_DEVICES,
        body=lambda e: {"version": "9.9.9", "devices": e.device, "max_parallel": "1"},
    ),
    # -- end of agent upgrades portal --
    # -- fleet health portal (issue 18): latest telemetry of the devices one may read --
    Rule("GET", "/fleet/health", USER, lists=(attr("device"),)),
    # -- end of fleet health portal --
    # -- alerts and data pages (issue 18): a project's alerts; a job's data, plotted --
    Rule("GET", "/alerts", USER),
    Rule("GET", "/alerts", Permission.READ, query={"project": const(P)}),
    Rule("GET", "/data", USER, lists=(attr("job"),)),
    Rule("GET", "/data", Permission.READ, query={"job": attr("job")}),
    # -- end of alerts and data pages --
    Rule(
        "POST",
        "/apps/{app}/versions",
        Permission.MANAGE_APPS,
        APP,
        body=const({"version": "9", "compose": "services:\n  a:\n    image: x\n"}),
    ),
    Rule(
        "GET",
        "/apps/{app}/versions/{version}",
        Permission.READ,
        {**APP, "version": attr("version")},
    ),
    Rule("POST", "/portal/fragments/validate", USER, body=const({"compose": "services: {}"})),
    Rule("GET", "/portal/fragments/versions", Permission.READ, query={"application": attr("app")}),
    Rule(
        "GET",
        "/portal/fragments/preview",
        Permission.READ,
        query={"application": attr("app"), "selector": const("tier=test")},
    ),
    Rule(
        "POST",
        "/jobs",
        Permission.MANAGE_APPS,
        body=lambda e: {
            "application": e.app,
            "version": e.version,
            "target": "devices",
            "devices": e.device,
        },
    ),
    Rule("GET", "/jobs/{job}", Permission.READ, JOB),
    Rule("GET", "/portal/fragments/jobs/{job}", Permission.READ, JOB),
    Rule("POST", "/jobs/{job}/cancel", Permission.MANAGE_APPS, JOB, body=const({})),
    Rule("POST", "/jobs/{job}/version", Permission.MANAGE_APPS, JOB, body=const({"version": "1"})),
    # staged rollouts (issue 19): the job page's rollout buttons
    Rule(
        "POST",
        "/jobs/{job}/rollout/{action}",
        Permission.MANAGE_APPS,
        {**JOB, "action": const("pause")},
        body=const({}),
    ),
    Rule("POST", "/keys", Permission.MANAGE_KEYS, body=const({"project": P})),
    Rule(
        "POST",
        "/keys/{key_id}/revoke",
        Permission.MANAGE_KEYS,
        {"key_id": attr("key_id")},
        body=const({}),
    ),
    Rule("POST", "/tokens", USER, body=const({"name": "mine"})),
    Rule("POST", "/tokens/{token_id}/revoke", OTHERS, {"token_id": admin_token_id}, body=const({})),
    Rule("POST", "/projects", ADMIN, body=const({"name": "sec-rogue"})),
    Rule("GET", "/projects/{project}", Permission.READ, PROJ),
    # Project secrets and variables page (issue 19).
    Rule("GET", "/projects/{project}/config", Permission.READ, PROJ),
    Rule(
        "POST",
        "/projects/{project}/config/secrets",
        Permission.MANAGE_SECRETS,
        PROJ,
        body=const({"name": "stolen", "value": "x"}),
    ),
    Rule(
        "POST",
        "/projects/{project}/config/secrets/{name}/delete",
        Permission.MANAGE_SECRETS,
        {**PROJ, "name": const("none")},
        body=const({}),
    ),
    Rule(
        "POST",
        "/projects/{project}/config/variables",
        Permission.MANAGE_VARIABLES,
        PROJ,
        body=const({"name": "STOLEN", "value": "x"}),
    ),
    Rule(
        "POST",
        "/projects/{project}/config/variables/{name}/delete",
        Permission.MANAGE_VARIABLES,
        {**PROJ, "name": const("NONE")},
        body=const({}),
    ),
    Rule("GET", "/devices/{device}/config", Permission.READ, DEV),
    Rule(
        "POST",
        "/devices/{device}/config/variables",
        Permission.MANAGE_VARIABLES,
        DEV,
        body=const({"name": "STOLEN", "value": "x"}),
    ),
    Rule(
        "POST",
        "/devices/{device}/config/variables/{name}/delete",
        Permission.MANAGE_VARIABLES,
        {**DEV, "name": const("NONE")},
        body=const({}),
    ),
    Rule(
        "POST",
        "/projects/{project}/members",
        Permission.MANAGE_MEMBERS,
        PROJ,
        body=const({"user": user_name(OUTSIDER), "role": "owner"}),
    ),
    Rule(
        "POST",
        "/projects/{project}/members/{user}",
        Permission.MANAGE_MEMBERS,
        {**PROJ, "user": const(user_name("viewer"))},
        body=const({"role": "owner"}),
    ),
    # Federated analytics pages (issue 15): computations and datasets. The form asks
    # an impossible query (ols without X), refused before anything is stored.
    Rule("GET", "/computations", USER),
    Rule("GET", "/datasets", USER, lists=(attr("device"),)),
    Rule(
        "POST",
        "/computations",
        Permission.COMPUTE,
        body=const({"project": P, "dataset": "d", "op": "ols", "column": "v", "selector": ""}),
    ),
    *(
        Rule("GET", path, Permission.READ, {"computation": const("c-none")}, absent=True)
        for path in ("/computations/{computation}", "/portal/fragments/computations/{computation}")
    ),
]

ALL_RULES = [*API_RULES, *WS_RULES, *PORTAL_RULES]


def route_table() -> set[tuple[str, str]]:
    """Every (method, path) the server answers, from the app's own route table."""
    import tempfile

    from edgefleet.server.app import create_app
    from edgefleet.server.settings import ServerSettings

    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(ServerSettings(data_dir=Path(data_dir)))
    routes: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = str(getattr(context, "path", None) or getattr(route, "path", ""))
        kind = type(route).__name__
        if "WebSocket" in kind:
            routes.add(("WS", path))
        elif kind == "Mount":
            routes.add(("MOUNT", path))
        else:
            routes.update((m, path) for m in getattr(route, "methods", ()) or () if m != "HEAD")
    return routes


def test_every_route_has_a_rule() -> None:
    """A new route must be given a rule here: who may use it is a decision."""
    routes = route_table()
    ruled = {(r.method, r.path) for r in ALL_RULES}
    assert len(routes) > 100, sorted(routes)
    missing = sorted(routes - ruled)
    assert not missing, f"routes without a rule in the role matrix: {missing}"
    stale = sorted(ruled - routes)
    assert not stale, f"rules for routes the server no longer has: {stale}"


# --- who gets what ---------------------------------------------------------------------------


def expected(rule: Rule, who: str) -> int | None:
    """The status ``who`` must get, or None for "allowed" (any answer but 401/403/404)."""
    if who in (ANON, GARBAGE):
        return 401
    if rule.need == USER:
        return None
    if rule.need == ADMIN:
        return 403
    if rule.need == OTHERS:
        return 404
    if rule.need == DEVICE_ONLY:
        return 401
    if rule.need == OWNERS:
        return None if who in ("owner", OUTSIDER) else 403
    assert isinstance(rule.need, Permission)
    if who == OUTSIDER:
        return 404
    if rule.need in GRANTS[Role(who)]:
        return 404 if rule.absent else None
    return 403


def sends(rule: Rule, who: str) -> bool:
    """Refusals are always tried; allowed callers send only reads and connection
    checks (``check=true``), so that the estate stays as it was."""
    return expected(rule, who) is not None or rule.method == "GET" or "check" in rule.query


def cases(rules: list[Rule]) -> Iterator[Any]:
    for rule in rules:
        if rule.need == PUBLIC:
            continue
        for who in CALLERS:
            if sends(rule, who):
                label = f"{who}-{rule.method}-{rule.path}" + (
                    "?" + "&".join(rule.query) if rule.query else ""
                )
                yield pytest.param(rule, who, id=label)


def _token(estate: Estate, who: str) -> str | None:
    return None if who == ANON else GARBAGE_TOKEN if who == GARBAGE else estate.tokens[who]


def _check_refusal(status: int, want: int, text: str, rule: Rule, who: str) -> None:
    assert status == want, (
        f"{who} {rule.method} {rule.path}: wanted {want}, got {status}: {text[:300]}"
    )
    if want == 403 and isinstance(rule.need, Permission):
        assert f"your role '{who}' may not {rule.need.value}" in text, text[:300]
    if want == 403 and rule.need == ADMIN:
        assert "administrators" in text, text[:300]


@pytest.fixture(scope="module")
def before(estate: Estate) -> Iterator[dict[str, Any]]:
    """The estate before the attacks; checked unchanged after the module's tests."""
    with estate.http() as admin:
        tokens = admin.get("/api/v1/tokens").json()["items"]
    estate.token_ids["admin"] = tokens[0]["id"]
    snapshot = estate.snapshot()
    yield snapshot
    assert estate.snapshot() == snapshot, "an attack changed the estate"


@pytest.mark.parametrize(("rule", "who"), list(cases(API_RULES)))
def test_api_route(rule: Rule, who: str, estate: Estate, before: dict[str, Any]) -> None:
    want = expected(rule, who)
    body = rule.body(estate) if rule.body else None
    with estate.http(None, _token(estate, who)) as http:
        # /proxy/J/D/S/P redirects to its trailing slash before anything else: follow it.
        http.follow_redirects = rule.path.startswith("/proxy/")
        request = http.build_request(
            rule.method, rule.url(estate), params=rule.query_for(estate), json=body
        )
        response = http.send(request, stream=True, follow_redirects=http.follow_redirects)
        try:
            # The event stream never ends: its status and headers are the answer.
            streams = rule.path.endswith("/events/stream")
            text = "" if streams else response.read().decode(errors="replace")
        finally:
            response.close()
    if want is not None:
        _check_refusal(response.status_code, want, text, rule, who)
        return
    assert response.status_code not in (401, 403, 404), f"{who} refused {rule.path}: {text[:300]}"
    assert response.status_code < 500 or rule.path.startswith("/proxy/"), text[:300]
    if who == OUTSIDER:
        for leak in rule.lists:
            assert str(leak(estate)) not in text, (
                f"{rule.path} shows P's {leak(estate)} to an outsider"
            )


# --- WebSockets ------------------------------------------------------------------------------


def ws_outcome(estate: Estate, rule: Rule, token: str | None) -> int:
    """The status a WebSocket attempt ended with: the HTTP status of a refused
    handshake, or the close code minus 4000 (the server's convention), or 1000."""
    query = "&".join(f"{k}={v}" for k, v in rule.query_for(estate).items())
    url = estate.url.replace("http://", "ws://") + rule.url(estate) + (f"?{query}" if query else "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with connect(url, additional_headers=headers, open_timeout=10, close_timeout=5) as ws:
            try:
                while True:
                    ws.recv(timeout=10)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else 1006
    except InvalidStatus as refused:
        return int(refused.response.status_code)
    return code - 4000 if code >= 4000 else code


@pytest.mark.parametrize(("rule", "who"), list(cases(WS_RULES)))
def test_websocket_route(rule: Rule, who: str, estate: Estate, before: dict[str, Any]) -> None:
    want = expected(rule, who)
    got = ws_outcome(estate, rule, _token(estate, who))
    if want is None:
        assert got == 1000, f"{who} refused on {rule.path}: {got}"
    else:
        assert got == want, f"{who} on {rule.path}: wanted {want}, got {got}"


# --- portal pages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PortalSession:
    cookies: dict[str, str]
    csrf: str


@pytest.fixture(scope="module")
def portal(estate: Estate) -> dict[str, PortalSession]:
    """A signed-in portal session per user (token sign-in: no password hashing),
    and for ``garbage`` a session cookie the server never issued."""
    sessions: dict[str, PortalSession] = {
        ANON: PortalSession({}, ""),
        GARBAGE: PortalSession({"edgefleet_session": "not-a-session"}, "x"),
    }
    for who in (*ROLES, OUTSIDER):
        with httpx.Client(base_url=estate.url, timeout=30) as browser:
            page = browser.get("/login")
            login_csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert login_csrf, page.text[:500]
            signed_in = browser.post(
                "/login",
                data={
                    "method": "token",
                    "token": estate.tokens[who],
                    "csrf": login_csrf.group(1),
                    "next": "/tokens",
                },
            )
            assert signed_in.status_code == 303, signed_in.text[:500]
            page = browser.get("/tokens")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert page.status_code == 200 and csrf, page.text[:500]
            sessions[who] = PortalSession(dict(browser.cookies), csrf.group(1))
    return sessions


@pytest.mark.parametrize(("rule", "who"), list(cases(PORTAL_RULES)))
def test_portal_route(
    rule: Rule, who: str, estate: Estate, portal: dict[str, PortalSession], before: dict[str, Any]
) -> None:
    session = portal[who]
    want = expected(rule, who)
    with httpx.Client(base_url=estate.url, cookies=session.cookies, timeout=30) as browser:
        url, params = rule.url(estate), rule.query_for(estate)
        form = None
        if rule.method == "POST":
            form = {**(rule.body(estate) if rule.body else {}), "csrf": session.csrf}
        request = browser.build_request(rule.method, url, params=params, data=form)
        response = browser.send(request, stream=True)
        try:
            # /portal/live is a never-ending event stream: its status is the answer.
            live = rule.path == "/portal/live"
            text = "" if live else response.read().decode(errors="replace")
        finally:
            response.close()
    status = response.status_code
    where = f"{who} {rule.method} {rule.path}"
    if want == 401:
        if rule.path.startswith("/portal/"):
            assert status == 401, f"{where}: {status} {text[:300]}"
        else:
            assert status == 303, f"{where}: {status} {text[:300]}"
            assert response.headers["location"].startswith("/login?next="), where
        return
    if want is None:
        assert status == 200, f"{where}: {status} {text[:300]}"
        if who == OUTSIDER:
            for leak in rule.lists:
                assert str(leak(estate)) not in text, f"{where} shows P's {leak(estate)}"
        return
    # Refused: the error page with the API's status; never a redirect to a result.
    words = {403: "may not" if isinstance(rule.need, Permission) else "administrators"}
    if rule.need == OWNERS:
        words[403] = "owner"
    message = words.get(want, "not found")
    # A form naming something the caller cannot see (another project) is shown
    # again saying it was not found, exactly as for a name that does not exist.
    form_not_found = want == 404 and rule.method == "POST" and status == 200
    assert status == want or form_not_found, f"{where}: wanted {want}, got {status}: {text[:300]}"
    assert message in text, f"{where}: no '{message}' in {text[:500]}"
