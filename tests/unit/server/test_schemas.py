"""Shared pieces of the API's models (edgefleet.server.schemas): the one way a
``selector`` field is checked and normalized, whichever resource takes it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edgefleet.server.jobs.schemas import JobIn
from edgefleet.server.readiness.schemas import RequirementIn
from edgefleet.server.schemas import selector_text


def test_labels_and_text_become_one_canonical_text() -> None:
    assert selector_text({"site": "x", "b": "y"}) == "site=x,b=y"
    assert selector_text("site=x, b=y") == "site=x,b=y"
    assert selector_text(" site in (a,b) ") == "site in (a,b)"


def test_a_bad_selector_is_a_validation_error_with_the_parsers_words() -> None:
    with pytest.raises(ValueError, match="cannot parse near '=bad'"):
        selector_text("=bad")


def test_a_long_text_is_refused_before_parsing() -> None:
    with pytest.raises(ValueError, match="at most 10 characters"):
        selector_text("site=" + "x" * 20, max_length=10)
    assert selector_text({"site": "x" * 20}, max_length=10) == "site=" + "x" * 20  # labels: no cap


def test_resources_validate_their_selector_fields_through_it() -> None:
    job = JobIn.model_validate({"application": "a", "selector": {"site": "x"}})
    assert job.selector == "site=x"
    with pytest.raises(ValidationError, match="cannot parse"):
        JobIn.model_validate({"application": "a", "selector": "=bad"})
    with pytest.raises(ValidationError, match="at most 1024 characters"):
        RequirementIn.model_validate({"selector": "a=" + "b" * 1100, "peripherals": ["camera"]})
