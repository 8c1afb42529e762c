"""What the server answers about users, tokens, projects, provisioning keys, registries, secrets, variables, sign-in.

Typed views of the JSON bodies (generated once from the server's OpenAPI
schemas): plain dicts at run time, so ``result["id"]`` keeps working, and
mypy checks every key a caller reads.
"""

from __future__ import annotations

from typing import TypedDict


class User(TypedDict):
    """A user (``GET /users/me``, ``users()``)."""

    id: str
    name: str
    admin: bool
    created_at: str
    has_password: bool
    identity_provider: str | None
    projects: dict[str, str]


class Token(TypedDict):
    """An API token's metadata (never its secret)."""

    id: str
    name: str
    user: str
    prefix: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None


class TokenCreated(Token):
    """A new API token: the ``token`` secret is shown only this once."""

    token: str


class Role(TypedDict):
    """A project and the caller's role in it."""


class Member(TypedDict):
    """A member of a project and their role."""

    user: str
    user_id: str
    role: Role


class Project(TypedDict):
    """A project with its members."""

    id: str
    name: str
    description: str
    created_at: str
    members: list[Member]
    role: Role | None


class ProvisioningKey(TypedDict):
    """A provisioning key's metadata (never its secret)."""

    id: str
    name: str
    project: str
    project_id: str
    prefix: str
    labels: dict[str, str]
    created_at: str
    created_by: str
    expires_at: str | None
    max_uses: int | None
    uses: int
    revoked_at: str | None


class ProvisioningKeyCreated(ProvisioningKey):
    """A new provisioning key: ``key`` is shown only this once."""

    key: str
    command: str


class Registry(TypedDict):
    """A project's login to a container registry (never the password)."""

    id: str
    project: str
    project_id: str
    registry: str
    username: str
    created_at: str
    created_by: str
    updated_at: str


class Secret(TypedDict):
    """A project secret's metadata (never its value)."""

    id: str
    name: str
    project: str
    project_id: str
    version: int
    created_at: str
    updated_at: str
    updated_by: str


class Variable(TypedDict):
    """A project, selector-scoped or device variable."""

    name: str
    value: str
    scope: str
    selector: str | None
    project: str
    device: str | None
    updated_at: str
    updated_by: str


class OidcInfo(TypedDict):
    """Whether and how the server offers single sign-on."""

    enabled: bool
    issuer: str | None
    login_url: str | None
    cli_url: str | None
    groups_claim: str | None
    device_flow: bool


class SsoToken(TypedDict):
    """An API token redeemed from a single sign-on."""

    id: str
    token: str
    user: str
    expires_at: str | None


class SsoDeviceStart(TypedDict):
    """A device sign-in begun: show ``user_code`` and ``verification_uri``."""

    handle: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    interval: int
    expires_in: int


class SsoDevicePoll(TypedDict, total=False):
    """One poll of a device sign-in: only ``status`` until the user approves,
    then (once) the fields of :class:`SsoToken` and no ``status``."""

    status: str
    id: str
    token: str
    user: str
    expires_at: str | None
