"""Who process services run as, and where they work: the two things that keep
a process service away from the agent's state dir (see :mod:`.process`)."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefleet.agent.errors import ConfigError


def own_name() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


@dataclass(frozen=True)
class ProcessUser:
    """Who process services run as."""

    name: str
    uid: int
    gid: int
    groups: list[int]

    @classmethod
    def named(cls, name: str) -> ProcessUser:
        """Look the user up; an agent that is not root can only be itself."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError as exc:
            raise ConfigError(f"--process-user {name}: no such user on this device") from exc
        me = os.geteuid()
        if me != 0 and entry.pw_uid != me:
            raise ConfigError(
                f"--process-user {name}: only an agent running as root can run processes as "
                f"another user (this one runs as uid {me})"
            )
        return cls(name, entry.pw_uid, entry.pw_gid, os.getgrouplist(name, entry.pw_gid))

    @property
    def ids(self) -> tuple[int, int, list[int]]:
        return self.uid, self.gid, self.groups

    def popen_args(self) -> dict[str, Any]:
        """Only when switching: an agent that is not root passes nothing."""
        if os.geteuid() != 0:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": self.groups}


def work_root(state_dir: Path, configured: Path | None) -> Path:
    """Where working directories go: outside the state dir, always."""
    root = (configured or state_dir.with_name(state_dir.name + "-work")).resolve()
    state = state_dir.resolve()
    if root == state or state in root.parents:
        raise ConfigError(
            f"--process-dir {root} is inside the state dir {state}, whose secrets "
            "processes must not reach; choose a directory outside it"
        )
    return root
