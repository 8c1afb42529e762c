"""The ``save`` stream between server and agent (issue 21: an instance saved
as a new application version).

The server opens it with a :class:`SaveRequest` as the header; the device
accepts (naming the container it commits) and then sends one
:class:`SaveEvent` per DATA frame (the mux keeps frame boundaries) until the
last one, which has ``done`` set and either ``digest`` or ``error``."""

from __future__ import annotations

from pydantic import BaseModel, Field

# host[:port]/path[/path…] in the characters an image repository allows
REPOSITORY_PATTERN = r"^[a-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)+$"
TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"


class RegistryLogin(BaseModel):
    """The docker SDK's ``auth_config``, as ``registry_auth`` hands it for pulls."""

    username: str = Field(max_length=256)
    password: str = Field(max_length=4096)
    serveraddress: str = Field(max_length=256)


class SaveRequest(BaseModel):
    kind: str = Field("save", pattern="^save$")
    job: str = Field(min_length=1, max_length=64)
    service: str = Field(min_length=1, max_length=64)
    repository: str = Field(max_length=255, pattern=REPOSITORY_PATTERN)
    tag: str = Field(pattern=TAG_PATTERN)
    auth: RegistryLogin | None = None


class SaveEvent(BaseModel):
    status: str = Field("", max_length=300)
    layer: str | None = Field(None, max_length=128)
    current: int | None = None
    total: int | None = None
    done: bool = False
    digest: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{64}$")
    error: str | None = Field(None, max_length=1000)
