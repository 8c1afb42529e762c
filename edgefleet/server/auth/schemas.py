from __future__ import annotations

from pydantic import Field

from edgefleet.server.schemas import Input, Name, Output, Timestamp


class UserIn(Input):
    name: Name
    password: str | None = Field(None, min_length=8, max_length=256)
    admin: bool = False


class PasswordIn(Input):
    password: str = Field(min_length=8, max_length=256)
    current_password: str | None = Field(
        None,
        max_length=256,
        description="your current password: needed to change your own (not for an "
        "administrator resetting someone else's)",
    )


class UserOut(Output):
    id: str
    name: str
    admin: bool
    created_at: Timestamp
    has_password: bool = False
    identity_provider: str | None = Field(
        None, description="the OpenID issuer this user signs in through (single sign-on)"
    )
    projects: dict[str, str] = Field(default_factory=dict, description="project name -> role")


class TokenIn(Input):
    name: str = Field("", max_length=128)
    expires_at: Timestamp | None = None
    expires_in: int | None = Field(None, gt=0, description="seconds from now")
    user: str | None = Field(None, description="admins may create tokens for other users")


class TokenOut(Output):
    id: str
    name: str
    user: str
    prefix: str
    created_at: Timestamp
    expires_at: Timestamp | None = None
    revoked_at: Timestamp | None = None
    last_used_at: Timestamp | None = None


class TokenCreated(TokenOut):
    token: str = Field(description="the secret: shown once, store it now")
