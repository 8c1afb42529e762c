"""A save's progress as the API shows it (edgefleet.server.instances.saves.SaveRun):
layers counted done on Pushed / already exists, bytes from the engine's counts."""

from __future__ import annotations

from edgefleet.server.instances.saves import SaveRun
from edgefleet.server.instances.schemas import SaveTarget
from edgefleet.wire.saves import SaveEvent

TARGET = SaveTarget(
    id="s1", instance="i1", service="web", app="tool", version="2", registry="reg:5000", device="d1"
)


def _run() -> SaveRun:
    return SaveRun(target=TARGET, repository="reg:5000/p/tool", project_pk=1)


def test_progress_counts_layers_and_bytes() -> None:
    run = _run()
    run.apply(SaveEvent(status="Preparing", layer="a"))
    run.apply(SaveEvent(status="Pushing", layer="a", current=100, total=400))
    run.apply(SaveEvent(status="Layer already exists", layer="b"))
    progress = run.out().progress
    assert (progress.layers_done, progress.layers_total) == (1, 2)
    assert (progress.bytes_done, progress.bytes_total) == (100, 400)
    run.apply(SaveEvent(status="Pushed", layer="a"))
    progress = run.out().progress
    assert (progress.layers_done, progress.bytes_done) == (2, 400)
    assert run.out().status == "Pushed"


def test_finish_sets_state_and_error() -> None:
    run = _run()
    run.finish("push failed: denied")
    out = run.out()
    assert out.state == "failed" and out.error == "push failed: denied" and out.finished_at
    other = _run()
    other.finish()
    assert other.out().state == "done" and other.out().error is None


def test_the_answer_shows_the_target_first_as_before() -> None:
    shown = _run().out().model_dump(mode="json")
    assert list(shown)[:9] == [
        "id", "instance", "service", "app", "version", "registry", "device", "state", "status",
    ]  # fmt: skip
    assert {k: shown[k] for k in ("id", "app", "device")} == {
        "id": "s1",
        "app": "tool",
        "device": "d1",
    }
