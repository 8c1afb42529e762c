"""Settings of one ``edgefleet server`` process.

One class, built by :func:`load` (never at import time). The CLI derives its
flags from the fields here; every field is also read from ``EDGEFLEET_<NAME>``.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "edgefleet"


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDGEFLEET_", extra="ignore")

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8400, description="port to listen on", ge=0, le=65535)
    data_dir: Path = Field(default_factory=default_data_dir, description="where state lives")
    database_url: str | None = Field(
        None, description="postgresql://user:pass@host/db (default: SQLite in the data dir)"
    )
    admin_token: str | None = Field(
        None, description="bootstrap: this exact string becomes the admin's API token"
    )
    bus: str = Field(
        "memory",
        description="'memory' (one process) or nats://[user:pass@]host:4222 "
        "(tls://host:4222 for TLS; several URLs comma-separated)",
    )
    bus_token: SecretStr | None = Field(None, description="NATS authentication token")
    metrics_token: SecretStr | None = Field(
        None,
        min_length=16,
        description="bearer token that may scrape GET /metrics (besides admin tokens)",
    )
    metrics_cache_seconds: float = Field(
        5.0, ge=0, le=300, description="seconds /metrics reuses its fleet counts (GROUP BY queries)"
    )
    metrics_lag_interval: float = Field(
        0.5, gt=0, le=60, description="seconds between event-loop lag samples (/metrics)"
    )
    alert_interval: float = Field(
        5.0, gt=0, le=3600, description="seconds between alert rule evaluations (issue 18)"
    )
    alert_webhook_allow: str = Field(
        "",
        max_length=4096,
        description="hosts and CIDRs webhooks may target, comma-separated "
        "(empty: any public address; private ranges only when listed)",
    )
    alert_webhook_allow_loopback: bool = Field(
        False, description="let webhooks target loopback addresses (tests, local receivers)"
    )
    alert_webhook_attempts: int = Field(
        6, ge=1, le=50, description="tries per webhook message before giving up"
    )
    alert_webhook_backoff: float = Field(
        1.0, gt=0, le=3600, description="seconds before the first webhook retry (doubles, jittered)"
    )
    alert_webhook_timeout: float = Field(
        5.0, gt=0, le=120, description="seconds a webhook receiver has to answer"
    )
    alert_max_rules: int = Field(200, ge=1, description="alert rules per project")
    alert_max_webhooks: int = Field(20, ge=1, description="webhooks per project")
    bus_creds_file: Path | None = Field(
        None, description="NATS credentials file (JWT + nkey seed, from nsc)"
    )
    bus_ca_file: Path | None = Field(None, description="CA bundle that signed the NATS server")
    bus_cert_file: Path | None = Field(None, description="client certificate for NATS mTLS")
    bus_key_file: Path | None = Field(None, description="private key of --bus-cert-file")
    bus_connect_timeout: float = Field(
        15.0, gt=0, description="seconds to reach NATS at start before giving up"
    )
    public_url: str | None = Field(
        None, description="URL users and agents reach this server at (for printed commands)"
    )
    apps_domain: str | None = Field(
        None,
        description="serve apps on their own origin, <job>-<device>-<service>-<port>.<domain> "
        "(default: 'localhost' when the server is reached on loopback; 'off': path mode only, "
        "sandboxed)",
    )
    heartbeat_interval: float = Field(10.0, gt=0, description="seconds between agent heartbeats")
    offline_after_heartbeats: float = Field(
        3.0, gt=1, description="a device is offline after this many missed heartbeats"
    )
    max_body_bytes: int = Field(
        2 * 1024 * 1024, gt=0, description="largest JSON request body the API accepts"
    )
    build_context_max_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="largest build context tar (Compose build:) accepted"
    )
    instance_save_timeout: float = Field(
        1800, gt=0, description="seconds a device may take to commit and push a saved instance"
    )
    instance_saves_kept: int = Field(
        200, ge=1, description="finished instance saves this replica remembers for GET"
    )
    stream_recheck_interval: float = Field(
        2.0,
        gt=0,
        le=60,
        description="seconds between re-checks of open streams' tokens and memberships (a "
        "revocation is also announced at once on the bus)",
    )
    # -- bounded work per request (see edgefleet/server/limits.py) --
    max_websocket_message_bytes: int = Field(
        8 * 1024 * 1024,
        gt=0,
        description="largest WebSocket message accepted (agents, exec, port-forward, proxy); "
        "a larger one closes the socket with 1009",
    )
    compose_max_expanded_bytes: int = Field(
        4 * 1024 * 1024, gt=0, description="bytes a Compose file may expand to (YAML aliases)"
    )
    compose_max_values: int = Field(
        50_000, gt=0, description="values a Compose file may expand to (YAML aliases)"
    )
    compose_max_depth: int = Field(32, gt=0, description="nesting depth of a Compose file")
    compose_parse_seconds: float = Field(
        2.0, gt=0, description="time one Compose file may take to read"
    )
    compose_parse_concurrency: int = Field(
        2, gt=0, description="Compose files read at once (in worker processes); others wait"
    )
    password_hash_concurrency: int = Field(
        2, gt=0, description="password hashes computed at once (64 MiB each); others wait"
    )
    login_failures_per_user: int = Field(
        5, gt=0, description="failed sign-ins per username per minute before 429 (per replica)"
    )
    login_failures_per_ip: int = Field(
        20, gt=0, description="failed sign-ins per client address per minute before 429"
    )
    enroll_failures_per_ip: int = Field(
        20, gt=0, description="refused enrollments per client address per minute before 429"
    )
    agent_connects_per_second: float = Field(
        1000.0,
        gt=0,
        description="most agent connections admitted per second (per replica), less while "
        "the event loop lags; the rest get 4503 with a retry-after that spreads them out "
        "(a reconnect storm after a restart)",
    )
    max_streams_per_user: int = Field(
        32, gt=0, description="event, log, exec, port-forward and proxy streams one user holds"
    )
    max_streams_per_device: int = Field(
        64, gt=0, description="exec, log, port-forward and proxy streams open to one device"
    )
    # device telemetry and stored workload logs (issue 18)
    telemetry_raw_hours: float = Field(
        48.0, gt=0, description="hours raw telemetry samples are kept (then only rollups)"
    )
    telemetry_rollup_step: int = Field(
        900, ge=60, le=86_400, description="seconds per downsampled telemetry bucket"
    )
    telemetry_rollup_days: float = Field(
        30.0, gt=0, description="days downsampled telemetry is kept"
    )
    telemetry_pass_interval: float = Field(
        60.0, gt=0, description="seconds between rollup and retention passes (one replica)"
    )
    telemetry_max_batch: int = Field(
        500, gt=0, le=500, description="most samples taken from one telemetry message"
    )
    stored_log_lines: int = Field(
        500, gt=0, le=2000, description="last log lines kept per device and service"
    )
    stored_log_bytes: int = Field(
        64 * 1024, gt=0, description="bytes of log lines kept per device and service"
    )
    stored_log_services: int = Field(
        100, gt=0, description="services whose logs are kept per device (least recent dropped)"
    )
    stored_log_days: float = Field(
        7.0, gt=0, description="days the logs of a service that stopped shipping are kept"
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="comma-separated addresses or networks of reverse proxies (HAProxy, "
        "nginx) whose X-Forwarded-For/-Proto headers are believed; '' trusts none, '*' "
        "everyone (only when nothing else can reach the port)",
    )
    tls_cert: Path | None = Field(None, description="serve HTTPS (and wss for agents)")
    tls_key: Path | None = Field(None, description="private key for --tls-cert")
    replica_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}",
        description="name of this replica (scale-out)",
    )
    object_store: str | None = Field(
        None, description="where uploaded files go: a directory (default) or s3://bucket/prefix"
    )
    secret_key: SecretStr | None = Field(
        None,
        description="key that encrypts stored secrets (registry passwords): a Fernet key or a "
        "16+ character passphrase; default: generated once into the data dir. Give every "
        "replica the same one",
    )
    secret_value_max_bytes: int = Field(
        64 * 1024, gt=0, description="largest project secret value (bytes)"
    )
    variable_value_max_bytes: int = Field(
        64 * 1024, gt=0, description="largest variable value (bytes), also a config file's size"
    )
    variables_max_per_scope: int = Field(
        1000, gt=0, description="most variables one project (or one device) may hold"
    )
    log_level: str = Field("info", description="debug, info, warning, error")
    data_record_max_bytes: int = Field(
        256 * 1024, gt=0, description="largest collected record the server stores (bytes)"
    )
    data_record_max_depth: int = Field(
        64, gt=0, le=500, description="deepest nesting of a collected record's JSON"
    )
    data_max_records_per_device: int = Field(
        10_000_000,
        gt=0,
        description="records one device may store for one job; past it the job's further "
        "records from that device are discarded (the agent is told why)",
    )
    schedule_min_period: float = Field(
        10.0,
        gt=0,
        description="shortest gap between two fire times of a periodic job's schedule (seconds)",
    )
    schedule_runs_kept: int = Field(
        1000,
        gt=0,
        description="runs kept per periodic job and device; older ones are deleted as new "
        "ones arrive, so a device flooding run reports cannot fill the database",
    )
    data_max_files_per_job: int = Field(
        10_000, gt=0, description="files one job may store (from all its devices together)"
    )
    data_file_max_bytes: int = Field(
        1024 * 1024 * 1024, gt=0, description="largest file a workload may hand in"
    )
    # -- institutional sign-in, OpenID Connect (see docs/OIDC.md) --
    oidc_issuer: str | None = Field(
        None,
        description="OpenID Connect issuer URL (e.g. https://auth.globus.org); enables "
        "'Sign in with your institution' in the portal and 'edgefleet login --sso'",
    )
    oidc_client_id: str | None = Field(None, description="this server's client id at the provider")
    oidc_client_secret: SecretStr | None = Field(
        None, description="the client secret (prefer --oidc-client-secret-file)"
    )
    oidc_client_secret_file: Path | None = Field(
        None, description="file holding the client secret (first line)"
    )
    oidc_scopes: str = Field(
        "openid profile email", description="scopes asked of the provider (space-separated)"
    )
    oidc_groups_claim: str = Field(
        "groups", description="claim listing the user's groups (a list or a single string)"
    )
    oidc_username_claim: str = Field(
        "preferred_username",
        description="claim a new user's name comes from (then email, then the subject)",
    )
    oidc_role_map: str = Field(
        "",
        description="provider group -> project role: 'group=project:role,...', or a JSON/YAML "
        "file mapping each group to {project: role}; re-applied at every sign-in",
    )
    oidc_flow_seconds: int = Field(
        600, gt=0, le=3600, description="seconds a started single sign-on may take"
    )
    oidc_max_pending: int = Field(
        10_000, gt=0, description="single sign-ons under way at once (all users); past it, 429"
    )
    oidc_cli_token_hours: int = Field(
        720, gt=0, description="lifetime of the API token 'edgefleet login --sso' obtains"
    )
    oidc_leeway_seconds: int = Field(
        60, ge=0, le=600, description="clock skew allowed on ID tokens' exp/iat"
    )
    oidc_http_timeout: float = Field(
        10.0, gt=0, le=120, description="seconds to wait for the provider"
    )
    oidc_jwks_refresh_seconds: float = Field(
        30.0,
        ge=0,
        description="least seconds between re-reads of the provider's keys for an unknown key id",
    )
    reservation_max_days: float = Field(
        92.0, gt=0, le=366, description="longest window one reservation may book"
    )
    reservation_max_devices: int = Field(
        1000, ge=1, le=10000, description="most devices one reservation may book"
    )
    reservation_check_interval: float = Field(
        2.0,
        gt=0,
        le=60,
        description="seconds between checks for reservation windows opening/closing",
    )
    agent_release_max_bytes: int = Field(
        100 * 1024 * 1024, ge=1024, description="largest agent release (wheel) an admin may upload"
    )
    agent_upgrade_deadline: float = Field(
        180.0,
        gt=0,
        le=3600,
        description="seconds an upgraded agent has to reconnect healthy before it rolls back",
    )
    agent_upgrade_interval: float = Field(
        1.0, gt=0, le=60, description="seconds between steps of agent upgrade rollouts"
    )
    fed_unmask_threads: int = Field(
        2,
        ge=1,
        le=16,
        description="threads removing the masks of a federated result (X25519 and AES-CTR "
        "run without the GIL, so more than one core works)",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value:
            from edgefleet.server.db.engine import DatabaseUrlError, async_url

            try:
                async_url(value, Path("."))
            except DatabaseUrlError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _forwarded_allow_ips(cls, value: str) -> str:
        import ipaddress

        items = [part.strip() for part in value.split(",") if part.strip()]
        if "*" in items:
            return "*"
        for item in items:
            if item.startswith("unix:"):
                continue
            try:
                ipaddress.ip_network(item)  # strict, as uvicorn reads it
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/24)"
                ) from None
        return ",".join(items)

    @model_validator(mode="after")
    def _oidc(self) -> ServerSettings:
        """Single sign-on settings are checked at start, naming the wrong flag."""
        if self.oidc_issuer:
            from edgefleet.server.auth.oidc_config import OidcConfig

            OidcConfig.from_settings(self)  # raises OidcConfigError, a ValueError
        return self

    @field_validator("bus")
    @classmethod
    def _bus_scheme(cls, value: str) -> str:
        if value != "memory" and not value.startswith(("nats://", "tls://")):
            raise ValueError("bus must be 'memory' or a nats:// URL")
        return value

    def bus_options(self) -> dict[str, object]:
        """What the NATS bus needs besides its URL (credentials, TLS files)."""
        return {
            "token": self.bus_token.get_secret_value() if self.bus_token else None,
            "creds_file": self.bus_creds_file,
            "ca_file": self.bus_ca_file,
            "cert_file": self.bus_cert_file,
            "key_file": self.bus_key_file,
            "connect_timeout": self.bus_connect_timeout,
        }

    @property
    def offline_after(self) -> float:
        return self.heartbeat_interval * self.offline_after_heartbeats

    def resolved_apps_domain(self) -> str | None:
        """The domain apps are served under, so no app shares the portal's origin.

        Unset, and with the server reached on loopback (``make run``), apps live
        at ``http://<label>.localhost:<port>/``: browsers resolve ``*.localhost``
        to loopback, so this needs no DNS. Elsewhere a wildcard DNS name is the
        operator's to give; without one, path mode serves apps sandboxed.
        """
        value = (self.apps_domain or "").strip().strip(".").lower()
        if value == "off" or (self.apps_domain is not None and not value):
            return None
        if value:
            return value
        from urllib.parse import urlsplit

        host = (urlsplit(self.public_url).hostname or "") if self.public_url else self.host
        host = host.lower()
        loopback = host in ("localhost", "::1") or host.startswith("127.")
        return "localhost" if loopback else None

    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_cert else "http"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{scheme}://{host}:{self.port}"


def load(**overrides: object) -> ServerSettings:
    """Environment first, then explicit overrides (CLI flags that were given)."""
    return ServerSettings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
