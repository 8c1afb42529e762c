"""Secrets and configs in the planner: what their files hold is each
service's, not the job's revision, so a rotation replaces only its users."""

from __future__ import annotations

from edgefleet.agent.changes import plan as p
from edgefleet.agent.runtimes.base import Workload, files_digest
from edgefleet.spec.model import AppSpec, FileRef, FileSource, Service
from edgefleet.wire.workload import JobAssignment


def assignment(secret_version: int = 1, config: str = "a=1") -> JobAssignment:
    spec = AppSpec(
        services={
            "app": Service(
                image="localhost/app:1",
                secrets=[FileRef(source="pw", target="/run/secrets/pw", version=secret_version)],
            ),
            "conf": Service(
                image="localhost/app:1",
                configs=[FileRef(source="c", target="/etc/c", content=config)],
            ),
            "other": Service(image="localhost/app:1"),
        },
        secrets={"pw": FileSource(external=True, name="pw")},
        configs={"c": FileSource(external=True, name="C")},
    )
    return JobAssignment(job_id="j1", project_id="p", application="a", version="1", spec=spec)


def running(want: JobAssignment) -> list[Workload]:
    revision = p.revision_of(want)
    return [
        Workload(
            id=f"{name}-1",
            name=f"ef-j1-{revision}-{name}",
            job_id="j1",
            service=name,
            revision=revision,
            version="1",
            state="running",
            inputs=files_digest(service),
        )
        for name, service in want.spec.services.items()
    ]


def test_the_revision_ignores_secret_versions_and_config_contents() -> None:
    assert p.revision_of(assignment(1)) == p.revision_of(assignment(2, "a=2"))
    assert files_digest(assignment(1).spec.services["app"]) != files_digest(
        assignment(2).spec.services["app"]
    )
    assert files_digest(assignment().spec.services["other"]) == ""


def test_nothing_to_do_when_every_file_is_current() -> None:
    want = assignment()
    assert p.plan_job("j1", want, running(want), []).kind == "noop"


def test_a_rotated_secret_replaces_only_the_service_that_uses_it() -> None:
    have = running(assignment(1))
    plan = p.plan_job("j1", assignment(2), have, [])
    assert plan.kind == "repair"
    assert plan.steps[0] == p.RemoveWorkloads(("app-1",))
    started = [s.service for s in plan.steps if isinstance(s, p.CreateAndStart)]
    assert started == ["app"]


def test_a_deleted_secret_leaves_the_running_service_alone() -> None:
    gone = assignment(1)
    gone.spec.services["app"].secrets[0].version = None  # the server has it no more
    assert p.plan_job("j1", gone, running(assignment(1)), []).kind == "noop"


def test_a_changed_config_replaces_only_its_service() -> None:
    plan = p.plan_job("j1", assignment(config="a=2"), running(assignment()), [])
    assert plan.steps[0] == p.RemoveWorkloads(("conf-1",))
    assert [s.service for s in plan.steps if isinstance(s, p.CreateAndStart)] == ["conf"]
