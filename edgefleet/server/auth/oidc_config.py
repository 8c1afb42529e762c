"""What single sign-on is configured to do, read once from the server's settings.

Pure: no I/O but reading the client-secret and role-map files named by the
settings. :class:`ServerSettings` calls :meth:`OidcConfig.from_settings` in a
validator, so a wrong ``--oidc-*`` flag stops the server at start with a
message naming the flag, not at the first sign-in.

The role map says which project role each provider group grants::

    --oidc-role-map "physics-lab=default:developer,floto-ops=default:operator"
    --oidc-role-map /etc/edgefleet/roles.yaml     # {group: {project: role}}
    --oidc-role-map '{"physics-lab": {"default": "developer"}}'   # the same, inline

Only the projects named in the map are managed by sign-in: there a user's
role is the highest one their groups grant (owner > operator > developer >
viewer), and no group at all removes the membership. Memberships in other
projects (given by hand) are left alone.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from pydantic import SecretStr

from edgefleet.server.auth.roles import Role


class OidcSettings(Protocol):
    """The ``--oidc-*`` settings :meth:`OidcConfig.from_settings` reads (what
    :class:`~edgefleet.server.settings.ServerSettings` has): typed here because
    the settings import this module to check them, so it must not import them."""

    @property
    def oidc_issuer(self) -> str | None: ...
    @property
    def oidc_client_id(self) -> str | None: ...
    @property
    def oidc_client_secret(self) -> SecretStr | None: ...
    @property
    def oidc_client_secret_file(self) -> Path | None: ...
    @property
    def oidc_scopes(self) -> str: ...
    @property
    def oidc_groups_claim(self) -> str: ...
    @property
    def oidc_username_claim(self) -> str: ...
    @property
    def oidc_role_map(self) -> str: ...
    @property
    def oidc_flow_seconds(self) -> int: ...
    @property
    def oidc_max_pending(self) -> int: ...
    @property
    def oidc_cli_token_hours(self) -> int: ...
    @property
    def oidc_leeway_seconds(self) -> int: ...
    @property
    def oidc_http_timeout(self) -> float: ...
    @property
    def oidc_jwks_refresh_seconds(self) -> float: ...


RANK = (Role.OWNER, Role.OPERATOR, Role.DEVELOPER, Role.VIEWER)
"""Precedence when several groups grant roles in one project: the first wins."""

RoleMap = dict[str, dict[str, Role]]
"""provider group -> {project name or id -> role}"""


class OidcConfigError(ValueError):
    """A ``--oidc-*`` setting is wrong; the message names it."""


def parse_role_map(value: str) -> RoleMap:
    """``group=project:role,...``, or ``{group: {project: role}}`` as JSON inline or
    in a JSON/YAML file named by its path."""
    text = value.strip()
    if not text:
        return {}
    if text.startswith("{"):  # the document itself, inline
        return _from_document(text, "--oidc-role-map.json")
    path = Path(text).expanduser()
    if "=" not in text or path.is_file():
        try:
            raw = path.read_text()
        except OSError as exc:
            raise OidcConfigError(f"--oidc-role-map: cannot read {text!r}: {exc}") from exc
        return _from_document(raw, text)
    mapping: RoleMap = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        group, sep, grant = item.rpartition("=")
        project, colon, role = grant.partition(":")
        if not sep or not colon or not group.strip() or not project.strip():
            raise OidcConfigError(
                f"--oidc-role-map: {item!r} is not 'group=project:role' "
                "(e.g. 'physics-lab=default:developer')"
            )
        mapping.setdefault(group.strip(), {})[project.strip()] = _role(role.strip(), item)
    return mapping


def _from_document(raw: str, source: str) -> RoleMap:
    import yaml

    try:
        data = json.loads(raw) if source.endswith(".json") else yaml.safe_load(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise OidcConfigError(f"--oidc-role-map: {source} is not valid JSON/YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise OidcConfigError(f"--oidc-role-map: {source} must map each group to {{project: role}}")
    mapping: RoleMap = {}
    for group, grants in data.items():
        if not isinstance(grants, dict) or not grants:
            raise OidcConfigError(
                f"--oidc-role-map: group {group!r} in {source} must map to {{project: role}}"
            )
        mapping[str(group)] = {
            str(project): _role(str(role), f"{group}: {project}")
            for project, role in grants.items()
        }
    return mapping


def _role(value: str, where: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise OidcConfigError(
            f"--oidc-role-map: {value!r} in {where!r} is not a role ({choices})"
        ) from None


def granted_roles(groups: list[str], role_map: RoleMap) -> dict[str, Role]:
    """The role in each managed project that these groups grant (absent: none). Pure."""
    best: dict[str, Role] = {}
    for group in groups:
        for project, role in role_map.get(group, {}).items():
            held = best.get(project)
            if held is None or RANK.index(role) < RANK.index(held):
                best[project] = role
    return best


def managed_projects(role_map: RoleMap) -> set[str]:
    return {project for grants in role_map.values() for project in grants}


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: tuple[str, ...]
    groups_claim: str
    username_claim: str
    role_map: RoleMap = field(default_factory=dict)
    flow_seconds: int = 600
    max_pending: int = 10_000
    cli_token_hours: int = 720
    leeway_seconds: int = 60
    http_timeout: float = 10.0
    jwks_refresh_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: OidcSettings) -> OidcConfig | None:
        """None when single sign-on is off (no ``--oidc-issuer``)."""
        if not settings.oidc_issuer:
            return None
        issuer = settings.oidc_issuer.strip().rstrip("/")
        parts = urlsplit(issuer)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise OidcConfigError(f"--oidc-issuer: {issuer!r} is not an http(s) URL")
        if parts.scheme == "http" and not is_loopback(issuer):
            raise OidcConfigError(
                "--oidc-issuer must be https:// (plain http only for a provider on loopback)"
            )
        if not settings.oidc_client_id:
            raise OidcConfigError("--oidc-client-id is required with --oidc-issuer")
        secret = (
            settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
        )
        if settings.oidc_client_secret_file is not None:
            try:
                lines = settings.oidc_client_secret_file.read_text().splitlines()
            except OSError as exc:
                raise OidcConfigError(f"--oidc-client-secret-file: {exc}") from exc
            secret = lines[0].strip() if lines else ""
            if not secret:
                raise OidcConfigError("--oidc-client-secret-file: the file is empty")
        scopes = tuple(settings.oidc_scopes.split())
        if "openid" not in scopes:
            scopes = ("openid", *scopes)
        if not settings.oidc_groups_claim.strip():
            raise OidcConfigError("--oidc-groups-claim must name a claim")
        return cls(
            issuer=issuer,
            client_id=settings.oidc_client_id,
            client_secret=secret or None,
            scopes=scopes,
            groups_claim=settings.oidc_groups_claim.strip(),
            username_claim=settings.oidc_username_claim.strip() or "preferred_username",
            role_map=parse_role_map(settings.oidc_role_map),
            flow_seconds=settings.oidc_flow_seconds,
            max_pending=settings.oidc_max_pending,
            cli_token_hours=settings.oidc_cli_token_hours,
            leeway_seconds=settings.oidc_leeway_seconds,
            http_timeout=settings.oidc_http_timeout,
            jwks_refresh_seconds=settings.oidc_jwks_refresh_seconds,
        )
