"""Errors of the agent::

AgentError
 +-- ConfigError          the flags or state dir cannot work (exit 2)
 +-- EnrollmentRefused    the server said no to the provisioning key (exit 2)
 +-- DeviceRevoked        the device was deleted on the server (exit 3)
 +-- ServerUnreachable    transient: retried with backoff, never fatal
 +-- RuntimeFailure       a runtime operation failed; ``.message`` is for people
"""

from __future__ import annotations


class AgentError(Exception):
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(AgentError):
    exit_code = 2


class EnrollmentRefused(AgentError):
    exit_code = 2


class DeviceRevoked(AgentError):
    exit_code = 3


class ServerUnreachable(AgentError):
    pass


class RuntimeFailure(AgentError):
    pass
