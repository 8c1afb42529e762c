"""A service's inputs in the planner: its environment and what its secret and
config files hold are its own, not the job's revision, so a changed variable
or a rotated secret replaces only the services it reaches."""

from __future__ import annotations

from edgefleet.agent.changes import plan as p
from edgefleet.agent.runtimes.base import Workload, inputs_digest
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
            inputs=inputs_digest(service),
        )
        for name, service in want.spec.services.items()
    ]


def test_the_revision_ignores_environment_secret_versions_and_config_contents() -> None:
    changed = assignment(2, "a=2")
    changed.spec.services["other"].environment = {"LEVEL": "debug"}
    assert p.revision_of(assignment(1)) == p.revision_of(changed)
    assert inputs_digest(assignment(1).spec.services["app"]) != inputs_digest(
        assignment(2).spec.services["app"]
    )
    assert inputs_digest(assignment().spec.services["other"]) == ""


def test_nothing_to_do_when_every_input_is_current() -> None:
    want = assignment()
    assert p.plan_job("j1", want, running(want), []).kind == "noop"


def _refreshed(plan: p.Plan) -> tuple[list[str], p.Step]:
    return [s.service for s in plan.steps if isinstance(s, p.CreateAndStart)], plan.steps[-1]


def test_a_rotated_secret_replaces_only_the_service_that_uses_it() -> None:
    """The new one starts beside the old, which is retired last: a start that
    fails (rolled back) leaves the old one serving."""
    plan = p.plan_job("j1", assignment(2), running(assignment(1)), [])
    assert plan.kind == "upgrade"
    assert _refreshed(plan) == (["app"], p.RemoveWorkloads(("app-1",)))
    assert not any(isinstance(s, p.RemoveWorkloads) for s in plan.steps[:-1])


def test_a_changed_config_or_environment_replaces_only_its_service() -> None:
    plan = p.plan_job("j1", assignment(config="a=2"), running(assignment()), [])
    assert _refreshed(plan) == (["conf"], p.RemoveWorkloads(("conf-1",)))
    changed = assignment()
    changed.spec.services["other"].environment = {"LEVEL": "debug"}
    plan = p.plan_job("j1", changed, running(assignment()), [])
    assert _refreshed(plan) == (["other"], p.RemoveWorkloads(("other-1",)))


def test_a_refresh_interrupted_after_the_new_start_only_retires_the_old() -> None:
    want = assignment(2)
    have = running(assignment(1)) + [
        w for w in running(want) if w.service == "app"
    ]  # new "app" up, old "app-1" not yet removed
    have[-1].id = "app-2"
    plan = p.plan_job("j1", want, have, [])
    assert _refreshed(plan) == ([], p.RemoveWorkloads(("app-1",)))


def test_a_deleted_secret_leaves_the_running_service_alone() -> None:
    gone = assignment(1)
    gone.spec.services["app"].secrets[0].version = None  # the server has it no more
    assert p.plan_job("j1", gone, running(assignment(1)), []).kind == "noop"
