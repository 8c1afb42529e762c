"""Shared pieces of the API's request and response models."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainSerializer

from edgefleet.labels import LabelError, Selector, check_labels, parse_selector

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class Input(BaseModel):
    """Request bodies refuse unknown fields: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _check_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(
            "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    try:
        return check_labels(dict(value))
    except LabelError as exc:
        raise ValueError(str(exc)) from exc


def selector_text(value: dict[str, str] | str, max_length: int | None = None) -> str:
    """A label selector sent as labels (``{"site": "x"}``) or as text, checked and
    written back in its one text form, for a ``selector`` field's validator; a
    text longer than ``max_length`` is refused before it is parsed."""
    if max_length is not None and isinstance(value, str) and len(value) > max_length:
        raise ValueError(f"at most {max_length} characters")
    try:
        parsed = Selector.from_labels(value) if isinstance(value, dict) else parse_selector(value)
    except LabelError as exc:
        raise ValueError(str(exc)) from exc
    return str(parsed)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


Name = Annotated[str, AfterValidator(_check_name)]
Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]
Timestamp = Annotated[datetime, AfterValidator(_aware), PlainSerializer(_iso, return_type=str)]
