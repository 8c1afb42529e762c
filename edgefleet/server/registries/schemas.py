from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from edgefleet.server.schemas import Input, Output, Timestamp
from edgefleet.spec.images import normalize_registry


class RegistryIn(Input):
    registry: str = Field(
        description="registry host as in image names: ghcr.io, registry.example.com:5000, docker.io"
    )
    username: str = Field(min_length=1, max_length=255)
    password: SecretStr = Field(description="password or access token; never shown again")

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str) -> str:
        return normalize_registry(value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value


class RegistryOut(Output):
    id: str
    project: str
    project_id: str
    registry: str
    username: str
    created_at: Timestamp
    created_by: str
    updated_at: Timestamp
