"""Test-only switches stay out of the product: fault injection and the relay
transcript live in tests/support/fedhooks.py, which wraps the shipped classes
from outside; the shipped agent and server read no such variable or setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefleet.agent.fed import FederatedPart
from edgefleet.server.computations.relay import Relay
from edgefleet.server.settings import ServerSettings
from edgefleet.wire.link import Link
from tests.support.fedhooks import Fault, parse_faults

PACKAGE = Path(__file__).resolve().parents[2] / "edgefleet"
SWITCHES = ("FED_FAULT", "fed_transcript", "fed-transcript", "TEST FAULT", "os._exit(70)")


def test_the_shipped_code_names_no_test_switch() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}: {switch}"
        for path in PACKAGE.rglob("*.py")
        for switch in SWITCHES
        if switch in path.read_text()
    ]
    assert found == []


def test_the_server_settings_offer_no_test_aid() -> None:
    assert [name for name in ServerSettings.model_fields if name.startswith("test")] == []


def test_the_methods_the_hooks_wrap_exist() -> None:
    """The hooks fail loudly at start-up if these go; this says which one did."""
    for cls, name in [
        (FederatedPart, "_step"),
        (FederatedPart, "_relay"),
        (Relay, "to_device"),
        (Relay, "from_device"),
        (Relay, "from_frame"),
        (Link, "send_frame"),
    ]:
        assert callable(getattr(cls, name, None)), f"{cls.__name__}.{name}"


def test_faults_parse_with_their_dataset_and_seconds() -> None:
    faults = parse_faults(" exit-after-masked@flaky, delay-masked:4.5 ,,exit-before-masked ")
    assert faults == [
        Fault("exit-after-masked", 0.0, "flaky"),
        Fault("delay-masked", 4.5, None),
        Fault("exit-before-masked", 0.0, None),
    ]
    with pytest.raises(ValueError, match="unknown fault 'explode'"):
        parse_faults("explode@flaky")
