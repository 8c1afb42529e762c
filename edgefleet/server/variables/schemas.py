"""API shapes of variables (not secret: members read them back)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from edgefleet.labels import LabelError, Selector, parse_selector
from edgefleet.server.schemas import Input, Output, Timestamp

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
NAME_RULE = "must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or '_'"


def check_name(value: str) -> str:
    if not VARIABLE_NAME.match(value):
        raise ValueError(NAME_RULE)
    return value


def canonical_selector(value: dict[str, str] | str | None) -> str:
    """``{"site": "a"}`` or ``"site=a"`` -> ``"site=a"``; none -> ``""``."""
    if not value:
        return ""
    try:
        parsed = Selector.from_labels(value) if isinstance(value, dict) else parse_selector(value)
    except LabelError as exc:
        raise ValueError(str(exc)) from exc
    return str(parsed)


class VariableIn(Input):
    value: str = Field(description="the variable's value (its size is limited by the server)")
    selector: dict[str, str] | str | None = Field(
        None,
        description='project variables only: apply to the devices whose labels match, {"site": '
        '"a"} or "site=a,tier!=test"; without it, to every device of the project',
    )

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: dict[str, str] | str | None) -> str:
        return canonical_selector(value)


class VariableOut(Output):
    name: str
    value: str
    scope: Literal["project", "selector", "device"]
    selector: str | None = None
    project: str
    device: str | None = None
    updated_at: Timestamp
    updated_by: str
