from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from edgefleet.server.schemas import Input, Name, Output, Timestamp

VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"


class SpecSource(Input):
    """A Compose spec as JSON (``spec``) or as YAML text (``compose``)."""

    spec: dict[str, Any] | None = None
    compose: str | None = Field(None, max_length=512 * 1024)

    @model_validator(mode="after")
    def _one_source(self) -> SpecSource:
        if (self.spec is None) == (self.compose is None):
            raise ValueError("give the application spec as 'spec' (JSON) or 'compose' (YAML text)")
        return self


class ApplicationIn(SpecSource):
    context: str | None = Field(
        None,
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="a build context uploaded with POST /build-contexts: Compose build: allowed",
    )
    project: str = Field("default", description="project id or name")
    name: Name
    version: str = Field(pattern=VERSION_PATTERN)
    description: str = Field("", max_length=1024)


class VersionIn(SpecSource):
    context: str | None = Field(
        None,
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="a build context uploaded with POST /build-contexts: Compose build: allowed",
    )
    version: str = Field(pattern=VERSION_PATTERN)


class Finding(Output):
    level: str
    key: str
    line: int | None = None
    column: int | None = None
    message: str


class VersionOut(Output):
    id: str
    version: str
    created_at: Timestamp
    created_by: str
    services: list[str]
    warnings: list[Finding] = Field(default_factory=list)
    spec: dict[str, Any] | None = None
    compose: str | None = None


class ApplicationOut(Output):
    id: str
    name: str
    project: str
    project_id: str
    description: str
    created_at: Timestamp
    versions: list[str]
    latest: str | None = None


class ValidateOut(Output):
    valid: bool
    findings: list[Finding]
    services: list[str] = Field(default_factory=list)
