"""Who is calling, and what they may see and do."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgefleet.server.auth.roles import GRANTS, Permission, Role, roles_with
from edgefleet.server.errors import Forbidden, NotFound


@dataclass(frozen=True)
class Caller:
    user_pk: int
    user_id: str
    name: str
    is_admin: bool
    roles: dict[int, Role] = field(default_factory=dict)
    token_id: str | None = None
    via: str = "token"

    def visible_projects(self) -> list[int] | None:
        """Project pks the caller sees, or ``None`` for all (admins)."""
        return None if self.is_admin else list(self.roles)

    def can(self, project_pk: int, permission: Permission) -> bool:
        if self.is_admin:
            return True
        role = self.roles.get(project_pk)
        return role is not None and permission in GRANTS[role]

    def require(self, project_pk: int, permission: Permission, what: str) -> None:
        """404 when the caller cannot see the project at all, 403 when the role is short."""
        if self.is_admin:
            return
        role = self.roles.get(project_pk)
        if role is None:
            raise NotFound(f"{what} not found")
        if permission not in GRANTS[role]:
            needed = " or ".join(roles_with(permission))
            raise Forbidden(
                f"your role '{role.value}' may not {permission.value}; it needs {needed}"
            )
