"""A loan's rights only narrow the device's policy; caps are admission rules."""

from __future__ import annotations

from edgefleet.server.loans.rights import guest_refusal, narrow
from edgefleet.server.loans.schemas import LoanRights
from edgefleet.spec.model import AppSpec
from edgefleet.spec.policy import DevicePolicy

DEVICE = DevicePolicy(
    process=True, capabilities=["NET_ADMIN", "SYS_TIME"], max_memory=1 << 30, max_pids=500
)


def spec(**service: object) -> AppSpec:
    base = {"runtime": "process", "command": ["sleep", "1"]}
    return AppSpec.model_validate({"services": {"s": {**base, **service}}})


def test_rights_never_widen_the_device_policy() -> None:
    grant = LoanRights(process=True, privileged=True, capabilities=["NET_ADMIN", "SYS_ADMIN"])
    policy = narrow(DEVICE, grant)
    assert policy.process and not policy.privileged
    assert policy.capabilities == ["NET_ADMIN"]
    assert narrow(DEVICE, LoanRights(max_memory=1 << 20)).max_memory == 1 << 20
    assert narrow(DEVICE, LoanRights(max_memory=1 << 40)).max_memory == 1 << 30
    assert not narrow(None, LoanRights(process=True)).process


def test_guest_refusals_name_what_the_loan_does_not_allow() -> None:
    assert guest_refusal(spec(), DEVICE, LoanRights(process=True)) is None
    refused = guest_refusal(spec(), DEVICE, LoanRights())
    assert refused is not None and "loan does not allow" in refused
    capped = LoanRights(process=True, max_memory=64 << 20)
    assert "set mem_limit" in str(guest_refusal(spec(), DEVICE, capped))
    assert guest_refusal(spec(mem_limit=32 << 20), DEVICE, capped) is None
    assert guest_refusal(spec(mem_limit=128 << 20), DEVICE, capped) is not None
