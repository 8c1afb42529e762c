from __future__ import annotations

from pydantic import Field

from edgefleet.server.auth.roles import Role
from edgefleet.server.schemas import Input, Name, Output, Timestamp


class ProjectIn(Input):
    name: Name
    description: str = Field("", max_length=1024)


class Member(Output):
    user: str
    user_id: str
    role: Role


class ProjectOut(Output):
    id: str
    name: str
    description: str
    created_at: Timestamp
    members: list[Member] = Field(default_factory=list)
    role: Role | None = Field(None, description="the caller's role here")


class MemberIn(Input):
    user: str
    role: Role


class RoleIn(Input):
    role: Role
