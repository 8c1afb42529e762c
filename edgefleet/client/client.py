"""A thin, typed-enough client over the REST API: JSON in, dicts out.

Every method maps to one endpoint and raises :mod:`edgefleet.client.errors`
exceptions; list methods follow the ``next`` cursor for you unless you ask
for one page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from edgefleet.client.errors import ConnectionFailed, from_response

JSON = dict[str, Any]


class Client:
    def __init__(
        self,
        server: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        verify: bool | str = True,
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=self.server, headers=headers, timeout=timeout, verify=verify
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- plumbing -----------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = path if path.startswith(("/api/", "/proxy/")) else f"/api/v1{path}"
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise ConnectionFailed(
                f"{self.server} did not answer in time ({exc.__class__.__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"cannot reach {self.server}: {exc}") from exc
        if response.status_code >= 400:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            raise from_response(response.status_code, body)
        if response.status_code == 204 or not response.content:
            return None
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.content

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def paged(self, path: str, *, limit: int | None = None, **params: Any) -> Iterator[JSON]:
        """Every item of a list endpoint, following ``next``; stops after ``limit`` items."""
        cursor: str | None = None
        seen = 0
        while True:
            page = self.get(path, cursor=cursor, limit=min(limit or 500, 500), **params)
            for item in page["items"]:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            cursor = page.get("next")
            if not cursor:
                return

    # -- server ---------------------------------------------------------------------------

    def health(self) -> JSON:
        result: JSON = self.get("/health")
        return result

    def me(self) -> JSON:
        result: JSON = self.get("/users/me")
        return result

    def oidc_info(self) -> JSON:
        """Whether the server offers single sign-on (``enabled``), its ``issuer``, and
        the ``cli_url`` a browser opens for :meth:`oidc_token`'s code. No token needed."""
        result: JSON = self.get("/auth/oidc")
        return result

    def oidc_token(
        self, code: str, code_verifier: str, name: str = "edgefleet login --sso"
    ) -> JSON:
        """Redeem the one-time code of a single sign-on begun at ``cli_url`` with the
        challenge ``S256(code_verifier)`` for an API token (``{"token", "user",
        "expires_at"}``). A code is good for one attempt; a wrong verifier burns it."""
        body = {"code": code, "code_verifier": code_verifier, "name": name}
        result: JSON = self.post("/auth/oidc/token", body)
        return result

    def oidc_device_start(self) -> JSON:
        """Begin a device sign-in (when ``oidc_info()["device_flow"]``): ``{"handle",
        "user_code", "verification_uri", "verification_uri_complete", "interval"}``.
        Keep ``handle`` secret: it is what :meth:`oidc_device_token` redeems."""
        result: JSON = self.post("/auth/oidc/device")
        return result

    def oidc_device_token(self, handle: str, name: str = "edgefleet login --sso") -> JSON:
        """Poll a device sign-in once: ``{"status": "authorization_pending" | "slow_down"}``
        until the user approves, then ``{"token", "user", "expires_at"}`` (once)."""
        result: JSON = self.post("/auth/oidc/device/token", {"handle": handle, "name": name})
        return result

    # -- users and tokens -----------------------------------------------------------------

    def users(self) -> list[JSON]:
        return list(self.paged("/users"))

    def create_user(self, name: str, password: str | None = None, admin: bool = False) -> JSON:
        result: JSON = self.post("/users", {"name": name, "password": password, "admin": admin})
        return result

    def set_password(self, user: str, password: str, current_password: str | None = None) -> None:
        """Set a user's portal password. Your own needs ``current_password`` (the
        server answers 403 when it is wrong); administrators reset others' without
        it. The user's other portal sessions end."""
        body = {"password": password}
        if current_password is not None:
            body["current_password"] = current_password
        self.put(f"/users/{user}/password", body)

    def delete_user(self, user: str) -> None:
        self.delete(f"/users/{user}")

    def tokens(self, user: str | None = None, all_users: bool = False) -> list[JSON]:
        return list(self.paged("/tokens", user=user, all=all_users or None))

    def create_token(
        self, name: str = "", *, user: str | None = None, expires_in: int | None = None
    ) -> JSON:
        result: JSON = self.post("/tokens", {"name": name, "user": user, "expires_in": expires_in})
        return result

    def revoke_token(self, token_id: str) -> JSON:
        result: JSON = self.delete(f"/tokens/{token_id}")
        return result

    # -- projects -------------------------------------------------------------------------

    def projects(self) -> list[JSON]:
        return list(self.paged("/projects"))

    def project(self, ref: str) -> JSON:
        result: JSON = self.get(f"/projects/{ref}")
        return result

    def create_project(self, name: str, description: str = "") -> JSON:
        result: JSON = self.post("/projects", {"name": name, "description": description})
        return result

    def delete_project(self, ref: str) -> None:
        self.delete(f"/projects/{ref}")

    def add_member(self, project: str, user: str, role: str) -> JSON:
        result: JSON = self.post(f"/projects/{project}/members", {"user": user, "role": role})
        return result

    def remove_member(self, project: str, user: str) -> None:
        self.delete(f"/projects/{project}/members/{user}")

    # -- provisioning keys ----------------------------------------------------------------

    def keys(self, project: str | None = None) -> list[JSON]:
        return list(self.paged("/provisioning-keys", project=project))

    def create_key(
        self,
        project: str = "default",
        *,
        labels: dict[str, str] | None = None,
        name: str = "",
        expires_in: int | None = None,
        max_uses: int | None = None,
    ) -> JSON:
        body = {
            "project": project,
            "labels": labels or {},
            "name": name,
            "expires_in": expires_in,
            "max_uses": max_uses,
        }
        result: JSON = self.post("/provisioning-keys", body)
        return result

    def revoke_key(self, key_id: str) -> JSON:
        result: JSON = self.delete(f"/provisioning-keys/{key_id}")
        return result

    # -- private registries ---------------------------------------------------------------

    def registries(self, project: str = "default") -> list[JSON]:
        """The project's registry credentials: host and username, never the password."""
        return list(self.paged(f"/projects/{project}/registries"))

    def add_registry(
        self, registry: str, username: str, password: str, *, project: str = "default"
    ) -> JSON:
        """Store (or replace) the project's login to a registry; devices pull with it."""
        body = {"registry": registry, "username": username, "password": password}
        result: JSON = self.post(f"/projects/{project}/registries", body)
        return result

    def remove_registry(self, registry: str, *, project: str = "default") -> None:
        """Forget the project's login to a registry (by host or id)."""
        self.delete(f"/projects/{project}/registries/{registry}")

    # -- alerts (rules, webhooks, alerts) -------------------------------------------------

    def alert_rules(self, project: str = "default") -> list[JSON]:
        """The project's alert rules."""
        return list(self.paged(f"/projects/{project}/alert-rules"))

    def add_alert_rule(
        self,
        name: str,
        kind: str,
        *,
        threshold: float | None = None,
        for_seconds: float = 0.0,
        project: str = "default",
    ) -> JSON:
        """A rule: kind device_offline (for_seconds), job_failed, disk_above (threshold %)
        or backlog_above (threshold records)."""
        body: JSON = {"name": name, "kind": kind, "for_seconds": for_seconds}
        if threshold is not None:
            body["threshold"] = threshold
        result: JSON = self.post(f"/projects/{project}/alert-rules", body)
        return result

    def update_alert_rule(self, rule: str, *, project: str = "default", **changes: Any) -> JSON:
        """Change a rule's threshold, for_seconds or enabled (by name or id)."""
        result: JSON = self.patch(f"/projects/{project}/alert-rules/{rule}", changes)
        return result

    def remove_alert_rule(self, rule: str, *, project: str = "default") -> None:
        """Delete a rule and its alerts."""
        self.delete(f"/projects/{project}/alert-rules/{rule}")

    def webhooks(self, project: str = "default") -> list[JSON]:
        """The project's alert webhooks (never their secrets)."""
        return list(self.paged(f"/projects/{project}/webhooks"))

    def add_webhook(self, name: str, url: str, *, project: str = "default") -> JSON:
        """Register a receiver; the answer's ``secret`` (HMAC key) is shown only this once."""
        result: JSON = self.post(f"/projects/{project}/webhooks", {"name": name, "url": url})
        return result

    def update_webhook(self, webhook: str, *, project: str = "default", **changes: Any) -> JSON:
        """Change a webhook's url or enabled (by name or id)."""
        result: JSON = self.patch(f"/projects/{project}/webhooks/{webhook}", changes)
        return result

    def remove_webhook(self, webhook: str, *, project: str = "default") -> None:
        """Delete a webhook; messages still owed to it are dropped."""
        self.delete(f"/projects/{project}/webhooks/{webhook}")

    def alerts(
        self, project: str = "default", *, state: str | None = None, limit: int | None = None
    ) -> list[JSON]:
        """Alerts, newest first; ``state`` 'firing' or 'resolved' to filter."""
        return list(self.paged(f"/projects/{project}/alerts", limit=limit, state=state))

    # -- secrets and variables ----------------------------------------------------------

    def secrets(self, project: str = "default") -> list[JSON]:
        """The project's secrets: name, version, who changed each and when; never values."""
        return list(self.paged(f"/projects/{project}/secrets"))

    def create_secret(self, name: str, value: str, *, project: str = "default") -> JSON:
        """Store a new project secret (operator or owner); fails if the name exists."""
        result: JSON = self.post(f"/projects/{project}/secrets", {"name": name, "value": value})
        return result

    def rotate_secret(self, name: str, value: str, *, project: str = "default") -> JSON:
        """Set a secret's new value (its version grows by one; created if new). The
        services that use it are redeployed with the new value, and only they."""
        result: JSON = self.put(f"/projects/{project}/secrets/{name}", {"value": value})
        return result

    def delete_secret(self, name: str, *, project: str = "default") -> None:
        """Delete a project secret; running services keep what they have."""
        self.delete(f"/projects/{project}/secrets/{name}")

    def variables(self, *, project: str = "default", device: str | None = None) -> list[JSON]:
        """A project's variables (with their selectors), or one device's own."""
        path = f"/devices/{device}/variables" if device else f"/projects/{project}/variables"
        return list(self.paged(path))

    def set_variable(
        self,
        name: str,
        value: str,
        *,
        project: str = "default",
        device: str | None = None,
        selector: str | None = None,
    ) -> JSON:
        """Set a variable for a project, for its devices matching ``selector``, or for
        one ``device`` (precedence: device > selector > project > job environment)."""
        if device:
            result: JSON = self.put(f"/devices/{device}/variables/{name}", {"value": value})
            return result
        body: JSON = {"value": value, "selector": selector} if selector else {"value": value}
        result = self.put(f"/projects/{project}/variables/{name}", body)
        return result

    def unset_variable(
        self,
        name: str,
        *,
        project: str = "default",
        device: str | None = None,
        selector: str | None = None,
    ) -> None:
        """Delete a project, selector-scoped or device variable."""
        if device:
            self.delete(f"/devices/{device}/variables/{name}")
            return
        params = {"selector": selector} if selector else {}
        self.request("DELETE", f"/projects/{project}/variables/{name}", params=params)

    # -- devices --------------------------------------------------------------------------

    def devices(
        self,
        *,
        selector: str | None = None,
        online: bool | None = None,
        project: str | None = None,
        limit: int | None = None,
    ) -> list[JSON]:
        params: dict[str, Any] = {"selector": selector, "project": project}
        if online is not None:
            params["online"] = "true" if online else "false"
        return list(self.paged("/devices", limit=limit, **params))

    def device(self, ref: str) -> JSON:
        result: JSON = self.get(f"/devices/{ref}")
        return result

    def update_device(
        self,
        ref: str,
        *,
        name: str | None = None,
        labels: dict[str, str | None] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> JSON:
        body: JSON = {}
        if name is not None:
            body["name"] = name
        if labels is not None:
            body["labels"] = labels
        if metadata is not None:
            body["metadata"] = metadata
        result: JSON = self.patch(f"/devices/{ref}", body)
        return result

    def delete_device(self, ref: str) -> None:
        self.delete(f"/devices/{ref}")

    # -- events ---------------------------------------------------------------------------

    def events(self, **filters: Any) -> list[JSON]:
        limit = filters.pop("limit", None)
        return list(self.paged("/events", limit=limit, **filters))

    # -- applications ---------------------------------------------------------------------

    def applications(self, project: str | None = None) -> list[JSON]:
        return list(self.paged("/applications", project=project))

    def application(self, ref: str) -> JSON:
        result: JSON = self.get(f"/applications/{ref}")
        return result

    def create_application(
        self,
        name: str,
        version: str,
        *,
        compose: str | None = None,
        spec: JSON | None = None,
        project: str = "default",
        description: str = "",
        context: str | None = None,
    ) -> JSON:
        """Create an application with its first version. ``context``: a build
        context's digest from :meth:`upload_build_context` (Compose ``build:``)."""
        body: JSON = {
            "project": project,
            "name": name,
            "version": version,
            "description": description,
        }
        body.update({"compose": compose} if compose is not None else {"spec": spec or {}})
        if context is not None:
            body["context"] = context
        result: JSON = self.post("/applications", body)
        return result

    def add_version(
        self,
        app: str,
        version: str,
        *,
        compose: str | None = None,
        spec: JSON | None = None,
        context: str | None = None,
    ) -> JSON:
        """Add an immutable version; ``context`` as in :meth:`create_application`."""
        body: JSON = {"version": version}
        body.update({"compose": compose} if compose is not None else {"spec": spec or {}})
        if context is not None:
            body["context"] = context
        result: JSON = self.post(f"/applications/{app}/versions", body)
        return result

    def upload_build_context(self, source: str | Path | bytes, project: str = "default") -> JSON:
        """Upload a build context: a directory (packed here as a tar) or a tar's
        bytes. Answers ``{"context": "sha256:…", "size", "project"}``; pass
        ``context`` to :meth:`create_application` or :meth:`add_version`."""
        if isinstance(source, bytes):
            data = source
        else:
            import io
            import tarfile

            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                tar.add(str(source), arcname=".")
            data = buffer.getvalue()
        result: JSON = self.request(
            "POST",
            "/build-contexts",
            params={"project": project},
            content=data,
            headers={"Content-Type": "application/x-tar"},
        )
        return result

    def versions(self, app: str) -> list[JSON]:
        return list(self.paged(f"/applications/{app}/versions"))

    def version(self, app: str, version: str) -> JSON:
        result: JSON = self.get(f"/applications/{app}/versions/{version}")
        return result

    def validate(self, *, compose: str | None = None, spec: JSON | None = None) -> JSON:
        body: JSON = {"compose": compose} if compose is not None else {"spec": spec or {}}
        result: JSON = self.post("/applications/validate", body)
        return result

    def delete_application(self, app: str) -> None:
        self.delete(f"/applications/{app}")

    # -- jobs -----------------------------------------------------------------------------

    def jobs(self, **filters: Any) -> list[JSON]:
        return list(self.paged("/jobs", **filters))

    def job(self, job_id: str, devices: bool = True) -> JSON:
        """The job with its per-state ``device_counts`` and its first 100 devices
        (``devices_next`` is set when there are more: see :meth:`job_devices`)."""
        result: JSON = self.get(f"/jobs/{job_id}", devices=None if devices else "false")
        return result

    def job_devices(
        self, job_id: str, *, state: str | None = None, limit: int | None = None
    ) -> Iterator[JSON]:
        """Every device of a job with its status, page by page; ``state`` filters
        (comma-separated device states)."""
        return self.paged(f"/jobs/{job_id}/devices", limit=limit, state=state)

    def job_runs(
        self,
        job_id: str,
        *,
        device: str | None = None,
        state: str | None = None,
        limit: int | None = None,
    ) -> Iterator[JSON]:
        """Runs of a periodic job, newest first, page by page: ``device``,
        ``scheduled``, ``started``, ``finished``, ``exit_code``, ``state``
        (ok | failed | skipped). ``device`` and ``state`` filter."""
        return self.paged(f"/jobs/{job_id}/runs", limit=limit, device=device, state=state)

    def create_job(
        self,
        application: str,
        *,
        version: str | None = None,
        devices: list[str] | None = None,
        selector: JSON | str | None = None,
        environment: dict[str, str] | None = None,
        start: str | None = None,
        end: str | None = None,
        name: str = "",
        project: str | None = None,
        rollout: JSON | None = None,
        schedule: JSON | str | None = None,
        reservation: str | None = None,
    ) -> JSON:
        """Create a job (``reservation``: run only inside that booking of its project). ``schedule`` makes it periodic: ``{"cron", "timezone",
        "overlap"}`` (or a cron string, UTC): its one-shot services run at those
        times on every device, from the device's own clock."""
        body: JSON = {"application": application, "name": name}
        for key, value in (
            ("version", version),
            ("devices", devices),
            ("selector", selector),
            ("environment", environment),
            ("start", start),
            ("end", end),
            ("project", project),
            ("rollout", rollout),
            ("schedule", schedule),
            ("reservation", reservation),
        ):
            if value is not None:
                body[key] = value
        result: JSON = self.post("/jobs", body)
        return result

    def update_job(self, job_id: str, **changes: Any) -> JSON:
        result: JSON = self.patch(
            f"/jobs/{job_id}", {k: v for k, v in changes.items() if v is not None}
        )
        return result

    def cancel_job(self, job_id: str) -> JSON:
        result: JSON = self.post(f"/jobs/{job_id}/cancel")
        return result

    def delete_job(self, job_id: str) -> None:
        self.delete(f"/jobs/{job_id}")

    def rollout(self, job_id: str, action: str) -> JSON:
        """Control the job's staged rollout: ``pause``, ``resume``, ``abort``
        (moved devices go back to the previous version) or ``override-locks``
        (upgrades stop waiting for update locks held now). Answers the job."""
        result: JSON = self.post(f"/jobs/{job_id}/rollout/{action}")
        return result

    # -- federated computations -----------------------------------------------------------

    def datasets(
        self,
        *,
        project: str | None = None,
        dataset: str | None = None,
        device: str | None = None,
    ) -> list[JSON]:
        """Datasets declared on devices, one item per (device, dataset): columns with
        types, approximate rows and bytes, the owner's policy. Never a value."""
        return list(self.paged("/datasets", project=project, dataset=dataset, device=device))

    def compute(
        self,
        dataset: str,
        op: str,
        column: str | None,
        *,
        devices: list[str] | None = None,
        selector: JSON | str | None = None,
        bins: list[float] | None = None,
        project: str | None = None,
        round_timeout: float | None = None,
        wait: bool = False,
        timeout: float = 600.0,
        **query: Any,
    ) -> JSON:
        """Ask for a secure aggregate (``count``, ``sum``, ``mean``, ``variance``,
        ``histogram`` with ``bins`` edges, ``quantile``, ``covariance``, ``ols``) of
        ``column`` of ``dataset`` over ``devices`` (ids or names) or a label
        ``selector``. ``query`` takes the analytics fields of ``POST /computations``:
        ``columns``, ``where`` (``[{"column", "op", "value"}]``), ``group_by`` with
        ``groups``, ``quantiles``, ``epsilon`` with ``bounds``. Returns the computation
        (``id``, ``state``); with ``wait``, polls until it is ``done`` or ``failed``.
        A refused request raises :class:`~edgefleet.client.errors.ApiError` (4xx)."""
        body: JSON = {"dataset": dataset, "op": op}
        for key, value in (
            ("column", column),
            ("devices", devices),
            ("selector", selector),
            ("bins", bins),
            ("project", project),
            ("round_timeout", round_timeout),
            *query.items(),
        ):
            if value is not None:
                body[key] = value
        created: JSON = self.post("/computations", body)
        return self.wait_computation(created["id"], timeout) if wait else created

    def computation(self, computation_id: str) -> JSON:
        """One computation: ``state`` (running, done, failed, refused), ``result``,
        ``participants``, ``dropped``, per-device ``parties`` and ``error``."""
        result: JSON = self.get(f"/computations/{computation_id}")
        return result

    def computations(self, **filters: Any) -> list[JSON]:
        """Computations of the caller's projects (filters: project, dataset, state)."""
        return list(self.paged("/computations", **filters))

    def wait_computation(
        self, computation_id: str, timeout: float = 600.0, interval: float = 0.5
    ) -> JSON:
        """Poll until the computation is no longer running (or ``timeout`` passes)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            found = self.computation(computation_id)
            if found["state"] != "running" or time.monotonic() >= deadline:
                return found
            time.sleep(interval)

    # -- collected data -------------------------------------------------------------------

    def data(
        self,
        job: str,
        *,
        device: str | None = None,
        stream: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
    ) -> Iterator[JSON]:
        """A job's records (``device, stream, seq, time, id, record``) in the order
        the server stored them, following pages; ``since``/``until`` are ISO times."""
        return self.paged(
            f"/jobs/{job}/data", limit=limit, device=device, stream=stream, since=since, until=until
        )

    def data_summary(self, job: str) -> JSON:
        """Per device and stream: records held, last record time, device backlog, evictions."""
        result: JSON = self.get(f"/jobs/{job}/data/summary")
        return result

    def download_data(
        self,
        job: str,
        sink: BinaryIO,
        *,
        format: str = "jsonl",
        device: str | None = None,
        stream: str | None = None,
        since: str | None = None,
        until: str | None = None,
        progress: Callable[[bytes, int | None], None] | None = None,
    ) -> int:
        """Write a job's records to ``sink`` as ``jsonl``, ``csv`` or ``parquet``;
        ``progress(chunk, total_records)`` is called per chunk. Returns the bytes written."""
        params = {"format": format, "device": device, "stream": stream}
        params.update(since=since, until=until)
        return self._download(f"/api/v1/jobs/{job}/data", params, sink, progress, "x-record-count")

    def data_files(self, job: str, *, device: str | None = None) -> list[JSON]:
        """Files the job's workloads handed to their agents (metadata)."""
        return list(self.paged(f"/jobs/{job}/files", device=device))

    def data_file(self, job: str, file_id: str) -> JSON:
        result: JSON = self.get(f"/jobs/{job}/files/{file_id}")
        return result

    def download_file(
        self,
        job: str,
        file_id: str,
        sink: BinaryIO,
        progress: Callable[[bytes, int | None], None] | None = None,
    ) -> int:
        """Write one uploaded file's bytes to ``sink``; ``progress(chunk, size)``."""
        path = f"/api/v1/jobs/{job}/files/{file_id}/content"
        return self._download(path, {}, sink, progress, "content-length")

    def _download(
        self,
        path: str,
        params: dict[str, Any],
        sink: BinaryIO,
        progress: Callable[[bytes, int | None], None] | None,
        total_header: str,
    ) -> int:
        query = {k: v for k, v in params.items() if v is not None}
        written = 0
        try:
            with self.http.stream(
                "GET", path, params=query, timeout=httpx.Timeout(30, read=300)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    try:
                        body: Any = response.json()
                    except ValueError:
                        body = response.text
                    raise from_response(response.status_code, body)
                declared = response.headers.get(total_header)
                total = int(declared) if declared and declared.isdigit() else None
                for chunk in response.iter_bytes():
                    sink.write(chunk)
                    written += len(chunk)
                    if progress is not None:
                        progress(chunk, total)
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"cannot reach {self.server}: {exc}") from exc
        return written

    # -- reaching devices -----------------------------------------------------------------

    def exec(
        self,
        device: str,
        command: list[str],
        *,
        timeout: float = 30,
        env: dict[str, str] | None = None,
    ) -> JSON:
        """Run a command on a device (not in a workload); returns exit_code/stdout/stderr."""
        body = {"command": command, "timeout": timeout, "env": env or {}}
        result: JSON = self.request(
            "POST", f"/devices/{device}/exec", json=body, timeout=timeout + 30
        )
        return result

    def workload_exec(
        self, job: str, device: str, service: str, command: list[str], *, timeout: float = 30
    ) -> JSON:
        body = {"device": device, "service": service, "command": command, "timeout": timeout}
        result: JSON = self.request("POST", f"/jobs/{job}/exec", json=body, timeout=timeout + 30)
        return result

    def stream_lines(self, path: str, **params: Any) -> Iterator[str]:
        """Lines of a streaming endpoint (logs, follow) as they arrive."""
        url = path if path.startswith("/api/") else f"/api/v1{path}"
        query = {k: v for k, v in params.items() if v is not None}
        try:
            with self.http.stream(
                "GET", url, params=query, timeout=httpx.Timeout(30, read=None)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    try:
                        body: Any = response.json()
                    except ValueError:
                        body = response.text
                    raise from_response(response.status_code, body)
                yield from response.iter_lines()
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"cannot reach {self.server}: {exc}") from exc

    def logs(
        self,
        job: str,
        *,
        device: str | None = None,
        service: str | None = None,
        tail: int | None = None,
        since: str | None = None,
        follow: bool = False,
        format: str = "text",
    ) -> Iterator[str]:
        return self.stream_lines(
            f"/jobs/{job}/logs",
            device=device,
            service=service,
            tail=tail,
            since=since,
            follow="true" if follow else None,
            format=format,
        )

    def agent_logs(self, device: str, *, tail: int = 200, follow: bool = False) -> Iterator[str]:
        return self.stream_lines(
            f"/devices/{device}/logs", tail=tail, follow="true" if follow else None
        )

    def device_action(
        self, device: str, action: str, *, confirm: bool = False, message: str = ""
    ) -> JSON:
        result: JSON = self.post(
            f"/devices/{device}/actions/{action}", {"confirm": confirm, "message": message}
        )
        return result

    # -- testbed: loans, reservations, declared peripherals ---------------------------------

    def device_metrics(
        self,
        device: str,
        *,
        since: str | None = None,
        until: str | None = None,
        step: str | None = None,
        limit: int | None = None,
    ) -> list[JSON]:
        """A device's health over time (issue 18), oldest first: ``{"time", "cpu",
        "memory", "disk", "temperature", "net_rx", "net_tx", "uptime", ...}``.
        ``since``/``until``: ISO times or durations ago (``"1h"``; default the last
        24 hours); ``step``: average into buckets (``"15m"``); ``limit``: at most."""
        return list(
            self.paged(
                f"/devices/{device}/metrics", limit=limit, since=since, until=until, step=step
            )
        )

    def lend_device(self, device: str, project: str, **limits: Any) -> JSON:
        """Lend a device to ``project`` (``"*"``: every project). ``limits``: ``rights``
        (the device-policy subset guests get), ``expose_labels``, ``time_share``,
        ``share_window_hours``."""
        result: JSON = self.post(f"/devices/{device}/loans", {"project": project, **limits})
        return result

    def loans(self, device: str) -> list[JSON]:
        """A device's loans (a guest sees only its own)."""
        return list(self.paged(f"/devices/{device}/loans"))

    def revoke_loan(self, device: str, project: str) -> None:
        """Revoke a loan: the guest's workloads on the device stop, "loan revoked"."""
        self.delete(f"/devices/{device}/loans/{project}")

    def reserve(self, project: str, *, start: str, end: str, **booking: Any) -> JSON:
        """Book devices: ``devices`` or ``selector``, optional ``count``, ``spread``,
        ``exclusive`` (default true), ``dry_run``. A dry run answers ``{"devices",
        "conflicts", "skipped"}``; a conflicting booking raises a 409 ``ClientError``
        whose body holds the ``conflicts``."""
        body: JSON = {"project": project, "start": start, "end": end}
        body.update({k: v for k, v in booking.items() if v is not None})
        result: JSON = self.post("/reservations", body)
        return result

    def reservations(self, **filters: Any) -> list[JSON]:
        """Reservations you can see; filters: ``project``, ``device``, ``from``, ``to``."""
        return list(self.paged("/reservations", **filters))

    def reservation(self, reservation: str) -> JSON:
        result: JSON = self.get(f"/reservations/{reservation}")
        return result

    def change_reservation(
        self, reservation: str, *, start: str | None = None, end: str | None = None
    ) -> JSON:
        """Extend or shorten (conflicts are checked again: 409 if the new window collides)."""
        body = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
        result: JSON = self.patch(f"/reservations/{reservation}", body)
        return result

    def cancel_reservation(self, reservation: str) -> None:
        self.delete(f"/reservations/{reservation}")

    def device_requirements(self, project: str) -> list[JSON]:
        """The peripherals a project declares its devices must have, per selector."""
        return list(self.get(f"/projects/{project}/device-requirements")["items"])

    def set_device_requirements(self, project: str, items: list[JSON]) -> list[JSON]:
        """Replace them: ``[{"selector": "type=cam", "peripherals": ["camera"]}]``."""
        body = {"items": items}
        return list(self.put(f"/projects/{project}/device-requirements", body)["items"])

    # -- agent releases and upgrades (issue 18) ----------------------------------------------

    def upload_agent_release(self, wheel: str | Path, version: str) -> JSON:
        """Upload an agent wheel (admins only); its SHA-256 is computed here and
        checked by the server. Answers the release (``id``, ``version``, ``sha256``)."""
        import hashlib

        data = Path(wheel).read_bytes()
        result: JSON = self.request(
            "POST",
            "/agent-releases",
            params={"version": version, "sha256": hashlib.sha256(data).hexdigest()},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return result

    def agent_releases(self) -> list[JSON]:
        """The agent releases the server holds."""
        return list(self.paged("/agent-releases"))

    def upgrade_agents(
        self,
        version: str,
        *,
        devices: list[str] | None = None,
        selector: str | None = None,
        project: str | None = None,
        max_parallel: int = 1,
        deadline: float | None = None,
    ) -> JSON:
        """Roll agent ``version`` out to ``devices`` (ids or names) or a label ``selector``,
        ``max_parallel`` at a time; answers the rollout (``id``, ``state``, ``devices``)."""
        body: JSON = {"version": version, "max_parallel": max_parallel}
        for key, value in (
            ("devices", devices),
            ("selector", selector),
            ("project", project),
            ("deadline", deadline),
        ):
            if value is not None:
                body[key] = value
        result: JSON = self.post("/devices/upgrade-agent", body)
        return result

    def agent_upgrade(self, upgrade_id: str) -> JSON:
        """One rollout with each device's state and, for a failure, its reason."""
        result: JSON = self.get(f"/agent-upgrades/{upgrade_id}")
        return result

    def wait_agent_upgrade(self, upgrade_id: str, timeout: float = 900.0) -> JSON:
        """Poll a rollout until it is ``done`` or ``failed`` (or ``timeout`` passes)."""
        import time

        until = time.monotonic() + timeout
        while True:
            upgrade = self.agent_upgrade(upgrade_id)
            if upgrade["state"] != "running" or time.monotonic() > until:
                return upgrade
            time.sleep(1.0)

    # -- personal instances (issue 21) --------------------------------------------------------

    def set_launchable(self, app: str, idle_timeout: int = 3600, launchable: bool = True) -> JSON:
        """Let members launch personal instances of ``app``; each stops after
        ``idle_timeout`` seconds without a request through the proxy."""
        body = {"launchable": launchable, "idle_timeout": idle_timeout}
        result: JSON = self.put(f"/applications/{app}/launchable", body)
        return result

    def launch_instance(
        self,
        app: str,
        *,
        version: str | None = None,
        device: str | None = None,
        selector: dict[str, str] | str | None = None,
    ) -> JSON:
        """Launch your own instance of a launchable application on one device (the
        one named, else the first online one matching ``selector``)."""
        body: JSON = {"app": app}
        for key, value in (("version", version), ("device", device), ("selector", selector)):
            if value is not None:
                body[key] = value
        result: JSON = self.post("/instances", body)
        return result

    def instances(self) -> list[JSON]:
        """Your instances and those shared with you."""
        return list(self.paged("/instances"))

    def instance(self, instance_id: str) -> JSON:
        result: JSON = self.get(f"/instances/{instance_id}")
        return result

    def share_instance(self, instance_id: str, user: str) -> JSON:
        """Let ``user`` (a member of the instance's project) open your instance."""
        result: JSON = self.post(f"/instances/{instance_id}/share", {"user": user})
        return result

    def unshare_instance(self, instance_id: str, user: str) -> JSON:
        result: JSON = self.delete(f"/instances/{instance_id}/share/{user}")
        return result

    def stop_instance(self, instance_id: str) -> JSON:
        """Remove the instance's workload from its device."""
        result: JSON = self.post(f"/instances/{instance_id}/stop", {})
        return result

    def save_instance(
        self, instance_id: str, service: str, as_: str, registry: str | None = None
    ) -> JSON:
        """Start saving ``service`` of your instance as ``as_`` (``APP:VERSION``):
        the device commits its container and pushes it to the project's registry
        (``registry``, default its only one); follow it with :meth:`instance_save`."""
        body: JSON = {"service": service, "as": as_}
        if registry is not None:
            body["registry"] = registry
        result: JSON = self.post(f"/instances/{instance_id}/save", body)
        return result

    def instance_save(self, instance_id: str, save_id: str) -> JSON:
        """A save's state (pushing, recording, done, failed), progress and error."""
        result: JSON = self.get(f"/instances/{instance_id}/saves/{save_id}")
        return result

    # -- project volumes (issue 21) ------------------------------------------------------------

    def create_volume(self, name: str, project: str = "default") -> JSON:
        """Declare a project volume; Compose mounts it as
        ``{external: true, x-edgefleet-project-volume: true}``."""
        result: JSON = self.post(f"/projects/{project}/volumes", {"name": name})
        return result

    def volumes(self, project: str = "default") -> list[JSON]:
        return list(self.paged(f"/projects/{project}/volumes"))

    def volume(self, name: str, project: str = "default") -> JSON:
        """The volume with its state and size on each device of the project."""
        result: JSON = self.get(f"/projects/{project}/volumes/{name}")
        return result

    def delete_volume(self, name: str, project: str = "default") -> JSON:
        """Remove it from every online device of the project (409 if in use)."""
        result: JSON = self.delete(f"/projects/{project}/volumes/{name}")
        return result

    def download_volume(
        self, name: str, device: str, sink: BinaryIO, project: str = "default"
    ) -> int:
        """Write the volume's files on ``device`` as a tar to ``sink``; bytes written."""
        path = f"/api/v1/projects/{project}/volumes/{name}/archive"
        return self._download(path, {"device": device}, sink, None, "content-length")

    def websocket_url(self, path: str, **params: Any) -> str:
        from urllib.parse import urlencode

        base = self.server.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        query = urlencode([(k, v) for k, v in params.items() if v is not None], doseq=True)
        return f"{base}{path}" + (f"?{query}" if query else "")
