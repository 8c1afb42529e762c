"""API shapes of project secrets: the value goes in, never comes out."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator

from edgefleet.server.schemas import Input, Output, Timestamp

SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
NAME_RULE = "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"


def check_name(value: str) -> str:
    if not SECRET_NAME.match(value):
        raise ValueError(NAME_RULE)
    return value


class SecretValue(Input):
    """The value alone: rotating a secret (``PUT /projects/{p}/secrets/{name}``).
    A ``SecretStr``, so no error message, log line or repr ever shows it."""

    value: SecretStr = Field(description="the secret; stored encrypted, never shown again")

    @field_validator("value")
    @classmethod
    def _value(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value


class SecretIn(SecretValue):
    name: str = Field(max_length=128, description="what a Compose file's secrets: names")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)


class SecretOut(Output):
    """Who changed which secret when; deliberately without the value."""

    id: str
    name: str
    project: str
    project_id: str
    version: int
    created_at: Timestamp
    updated_at: Timestamp
    updated_by: str
