"""Who may read job environments and exec argv back, and how a masked value
survives a round trip through PATCH (edgefleet.server.redact)."""

from __future__ import annotations

import pytest

from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Role
from edgefleet.server.redact import MASK, keep_masked, masked, sees_secrets

PROJECT, OTHER = 1, 2


def caller(role: Role | None = None, *, admin: bool = False) -> Caller:
    roles = {PROJECT: role} if role is not None else {}
    return Caller(user_pk=7, user_id="u7", name="ann", is_admin=admin, roles=roles)


@pytest.mark.parametrize(
    ("role", "sees"),
    [(Role.OWNER, True), (Role.OPERATOR, True), (Role.DEVELOPER, False), (Role.VIEWER, False)],
)
def test_only_owners_and_operators_read_secrets_of_their_project(role: Role, sees: bool) -> None:
    assert sees_secrets(caller(role), PROJECT) is sees
    # a role in one project says nothing about another
    assert sees_secrets(caller(role), OTHER) is False


def test_administrators_read_every_project_and_nobody_reads_a_projectless_one() -> None:
    assert sees_secrets(caller(admin=True), OTHER) is True
    assert sees_secrets(caller(admin=True), None) is True
    assert sees_secrets(caller(Role.OWNER), None) is False
    assert sees_secrets(caller(), PROJECT) is False


def test_masking_keeps_the_keys_and_hides_every_value() -> None:
    assert masked({"API_KEY": "s3cret", "EMPTY": ""}) == {"API_KEY": MASK, "EMPTY": MASK}
    assert masked({}) == {}


def test_a_masked_value_sent_back_keeps_the_stored_one() -> None:
    stored = {"API_KEY": "s3cret", "MODE": "fast"}
    sent = {"API_KEY": MASK, "MODE": "slow", "NEW": "x"}
    assert keep_masked(sent, stored) == {"API_KEY": "s3cret", "MODE": "slow", "NEW": "x"}


def test_a_mask_for_a_key_never_stored_is_taken_literally_and_dropped_keys_stay_dropped() -> None:
    # nothing to keep: the mask is the value the writer sent (it cannot leak a secret)
    assert keep_masked({"FRESH": MASK}, {"API_KEY": "s3cret"}) == {"FRESH": MASK}
    assert keep_masked({}, {"API_KEY": "s3cret"}) == {}
