from __future__ import annotations

from pydantic import Field, field_validator

from edgefleet.server.schemas import Input, Output, selector_text


class RequirementIn(Input):
    selector: dict[str, str] | str = Field(
        "", description='which devices: labels {"type": "cam"} or "type=cam"; "" for all'
    )
    peripherals: list[str] = Field(
        min_length=1, max_length=32, description="kinds, names or paths, e.g. camera, /dev/ttyUSB0"
    )

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: dict[str, str] | str) -> str:
        return selector_text(value, max_length=1024)

    @field_validator("peripherals")
    @classmethod
    def _peripherals(cls, value: list[str]) -> list[str]:
        if any(not p or len(p) > 256 for p in value):
            raise ValueError("each peripheral must be 1-256 characters")
        return value


class RequirementsIn(Input):
    """The project's whole set of rules: a PUT replaces them all."""

    items: list[RequirementIn] = Field(max_length=100)


class RequirementOut(Output):
    selector: str
    peripherals: list[str]
