"""Declared peripherals: a device matching a rule must have each, by kind, name or path."""

from __future__ import annotations

from edgefleet.labels import parse_selector
from edgefleet.server.readiness.check import Rule, missing
from edgefleet.wire.messages import Peripheral

CAMERA = Peripheral(kind="camera", name="video0", path="/dev/video0")
RULES = [Rule(parse_selector("type=cam"), ("camera", "/dev/video0")), Rule(parse_selector(""), ())]


def test_a_matching_device_without_the_peripheral_is_not_ready() -> None:
    reason = missing(RULES, {"type": "cam"}, [])
    assert reason == "missing peripheral camera (required for type=cam)"


def test_kind_name_or_path_satisfies_a_rule() -> None:
    assert missing(RULES, {"type": "cam"}, [CAMERA]) is None
    by_name = [Rule(parse_selector(""), ("video0",))]
    assert missing(by_name, {}, [CAMERA]) is None
    serial = [Rule(parse_selector(""), ("/dev/ttyUSB0",))]
    assert "/dev/ttyUSB0" in str(missing(serial, {}, [CAMERA]))


def test_devices_the_rule_does_not_select_are_unaffected() -> None:
    assert missing(RULES, {"type": "plain"}, []) is None
