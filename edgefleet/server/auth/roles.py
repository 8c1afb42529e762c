"""Project roles and what each may do.

Visibility is membership: a caller who is not a member of a resource's
project (and not an admin) gets 404 for it, exactly as if it did not exist.
A member whose role lacks the permission gets 403.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    OPERATOR = "operator"
    DEVELOPER = "developer"
    VIEWER = "viewer"


class Permission(StrEnum):
    READ = "read"
    MANAGE_MEMBERS = "manage members"
    MANAGE_DEVICES = "manage devices"
    MANAGE_KEYS = "manage provisioning keys"
    EXEC_DEVICE = "run commands on devices"
    MANAGE_APPS = "manage applications and jobs"
    EXEC_WORKLOAD = "run commands in workloads"
    COMPUTE = "run federated computations"
    MANAGE_REGISTRIES = "manage registry credentials"
    MANAGE_SECRETS = "manage project secrets"
    MANAGE_VARIABLES = "manage variables"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.OPERATOR: frozenset(
        {
            Permission.READ,
            Permission.MANAGE_DEVICES,
            Permission.MANAGE_KEYS,
            Permission.EXEC_DEVICE,
            Permission.EXEC_WORKLOAD,
            Permission.MANAGE_REGISTRIES,
            Permission.MANAGE_SECRETS,
            Permission.MANAGE_VARIABLES,
        }
    ),
    Role.DEVELOPER: frozenset(
        {
            Permission.READ,
            Permission.MANAGE_APPS,
            Permission.EXEC_WORKLOAD,
            Permission.COMPUTE,
            Permission.MANAGE_REGISTRIES,
            Permission.MANAGE_VARIABLES,
        }
    ),
    Role.VIEWER: frozenset({Permission.READ}),
}


def roles_with(permission: Permission) -> list[str]:
    return [role.value for role, grants in GRANTS.items() if permission in grants]
