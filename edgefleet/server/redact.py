"""What roles below operator may not read back: job environment values and
the argv of commands run on devices.

A job's ``environment`` often holds secrets (API keys, passwords handed to a
workload), and an exec's argv can too (``curl -H 'Authorization: …'``). Both
are *write-only* for viewers and developers: they see that the key exists, or
that a command ran (by whom, with what exit code), never the value. Owners,
operators and administrators — the people trusted with the devices
themselves — see them. One rule, used by the jobs API, the events API and
stream, the exec audit and the portal, so no view can drift from another.
"""

from __future__ import annotations

from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Role

MASK = "***"
"""What a masked value reads as; sent back unchanged in a PATCH, it keeps the value."""

SEES_SECRETS = frozenset({Role.OWNER, Role.OPERATOR})


def sees_secrets(caller: Caller, project_pk: int | None) -> bool:
    """Whether the caller may read secrets of this project (admins: all projects)."""
    if caller.is_admin:
        return True
    if project_pk is None:
        return False
    role = caller.roles.get(project_pk)
    return role is not None and Role(role) in SEES_SECRETS


def masked(values: dict[str, str]) -> dict[str, str]:
    """The keys, every value replaced by :data:`MASK`."""
    return {key: MASK for key in values}


def keep_masked(sent: dict[str, str], stored: dict[str, str]) -> dict[str, str]:
    """A new environment where a value sent back as :data:`MASK` keeps the stored
    one: a masked view round-tripped through PATCH must not overwrite secrets."""
    return {
        key: stored[key] if value == MASK and key in stored else value
        for key, value in sent.items()
    }
