"""Bus envelopes between replicas (issue 17): typed, decoded in one place, and
byte-for-byte the JSON replicas of the previous version publish and read, so a
rolling restart keeps working."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from edgefleet.fed.messages import Abort
from edgefleet.server.bus.envelopes import (
    CommandAnswered,
    CommandFailed,
    Deliver,
    EnvelopeError,
    EventNotice,
    FedForward,
    Kick,
    OpenStream,
    RightsChanged,
    RunCommand,
    StreamOpened,
    Superseded,
    read_command_reply,
    read_device,
    read_event,
    read_fed,
    read_rights,
    read_stream_opened,
)
from edgefleet.server.events.service import PendingEvent
from edgefleet.wire.commands import ExecArgs, ExecReply
from edgefleet.wire.messages import CommandResult, DesiredState, Revoked, encode


def _json(data: bytes) -> object:
    return json.loads(data)


def test_device_envelopes_are_the_json_older_replicas_publish() -> None:
    desired = DesiredState(generation=7)
    assert _json(Deliver(message=desired).encode()) == {
        "op": "deliver", "message": json.loads(encode(desired)),
    }  # fmt: skip
    args = ExecArgs(command=["ls"])
    assert _json(RunCommand(name="exec", args=args, timeout=5).encode()) == {
        "op": "command", "name": "exec", "args": args.model_dump(mode="json"), "timeout": 5.0,
    }  # fmt: skip
    assert _json(Kick(reason="gone").encode()) == {"op": "kick", "reason": "gone"}
    assert _json(Superseded(replica="r1", session="s1").encode()) == {
        "op": "superseded", "replica": "r1", "session": "s1",
    }  # fmt: skip
    assert _json(OpenStream(sid="abc").encode()) == {"op": "open_stream", "sid": "abc"}


def test_bodies_of_older_replicas_decode_into_their_envelope() -> None:
    old = {"op": "deliver", "message": {"type": "revoked", "reason": "bye"}}
    deliver = read_device(json.dumps(old).encode())
    assert isinstance(deliver, Deliver) and deliver.message == Revoked(reason="bye")
    old = {"op": "command", "name": "exec", "args": {"command": ["id"]}, "timeout": 3}
    run = read_device(json.dumps(old).encode())
    assert isinstance(run, RunCommand) and run.args.model_dump() == {"command": ["id"]}
    kick = read_device(b'{"op": "kick"}')
    assert isinstance(kick, Kick) and kick.reason == "revoked"
    opened = read_device(b'{"op": "open_stream", "sid": "s"}')
    assert isinstance(opened, OpenStream) and opened.sid == "s"


def test_a_malformed_body_is_an_envelope_error_not_a_key_error() -> None:
    for body in (b"{}", b'{"op": "teleport"}', b'{"op": "open_stream"}', b"not json"):
        with pytest.raises(EnvelopeError):
            read_device(body)
    with pytest.raises(EnvelopeError, match="message"):
        read_device(b'{"op": "deliver", "message": {"type": "nonsense"}}')


def test_command_replies_either_carry_the_result_or_say_why_not() -> None:
    result = CommandResult(request_id="r", result=ExecReply(exit_code=0, stdout="", stderr=""))
    answered = read_command_reply(CommandAnswered(result=result).encode())
    assert isinstance(answered, CommandAnswered)
    assert answered.result.request_id == "r" and answered.result.ok
    assert answered.result.result.model_dump()["exit_code"] == 0
    failed = read_command_reply(b'{"error": "device did not answer in time"}')
    assert isinstance(failed, CommandFailed) and "in time" in failed.error
    assert _json(CommandFailed(error="x").encode()) == {"error": "x"}


def test_stream_answers_keep_their_meaning() -> None:
    assert read_stream_opened(StreamOpened().encode()).ok
    assert read_stream_opened(b'{"ok": true}').error == ""
    assert read_stream_opened(b'{"error": "no such device"}').error == "no such device"


def test_rights_changes_fed_forwards_and_events_round_trip() -> None:
    change = RightsChanged(users=[3, 1], memberships=True, replica="r2")
    assert _json(change.encode()) == {"users": [3, 1], "memberships": True, "replica": "r2"}
    assert read_rights(change.encode()) == change
    assert read_rights(b'{"users": ["7"]}').users == [7]

    payload = Abort(computation_id="c1", reason="stop")
    forward = FedForward(device="d1", payload=payload)
    assert _json(forward.encode()) == {
        "device": "d1",
        "payload": json.loads(payload.model_dump_json()),
    }
    back = read_fed(forward.encode())
    assert back.device == "d1" and back.payload == payload

    when = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    pending = PendingEvent("job.created", 4, "made it", job_id="j1", data={"n": 1}, time=when)
    notice = read_event(pending.wire())
    assert notice == EventNotice(
        time="2026-12-01T13:00:00Z", project_pk=4, kind="job.created", job_id="j1",
        message="made it", data={"n": 1},
    )  # fmt: skip
    assert set(_json(pending.wire())) == {  # type: ignore[arg-type]
        "time", "project_pk", "kind", "device_id", "job_id", "actor", "message", "data",
    }  # fmt: skip
