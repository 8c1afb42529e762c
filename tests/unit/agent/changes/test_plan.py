"""The change planner and queue: pure, so tested without an engine."""

from __future__ import annotations

import asyncio

from edgefleet.agent.changes import plan as p
from edgefleet.agent.changes.queue import ChangeQueue, RetryBook
from edgefleet.agent.runtimes.base import Workload
from edgefleet.spec.model import AppSpec, Dependency, Service
from edgefleet.wire.workload import JobAssignment


def assignment(version: str = "1", services: tuple[str, ...] = ("db", "web")) -> JobAssignment:
    spec = AppSpec(
        services={
            name: Service(
                image=f"localhost/{name}:{version}",
                depends_on={"db": Dependency()} if name == "web" else {},
            )
            for name in services
        }
    )
    return JobAssignment(job_id="j1", project_id="p", application="app", version=version, spec=spec)


def workload(service: str, revision: str, version: str = "1", state: str = "running") -> Workload:
    return Workload(
        id=f"{service}-{revision}",
        name=f"ef-j1-{revision}-{service}",
        job_id="j1",
        service=service,
        revision=revision,
        version=version,
        state=state,  # type: ignore[arg-type]
    )


def kinds(plan: p.Plan) -> list[str]:
    return [type(step).__name__ for step in plan.steps]


def test_revision_is_stable_and_changes_with_the_spec() -> None:
    assert p.revision_of(assignment()) == p.revision_of(assignment())
    assert p.revision_of(assignment("1")) != p.revision_of(assignment("2"))


def test_fresh_deploy_starts_dependencies_first_then_verifies() -> None:
    plan = p.plan_job("j1", assignment(), [], [])
    assert plan.kind == "deploy"
    starts = [s.service for s in plan.steps if isinstance(s, p.CreateAndStart)]
    assert starts == ["db", "web"]
    assert kinds(plan)[0] == "EnsureNetwork"
    assert kinds(plan)[-1] == "Verify"


def test_a_container_created_but_never_started_is_replaced() -> None:
    """The agent was killed between create and start: the leftover is removed
    and the service started afresh, never taken for a running one."""
    rev = p.revision_of(assignment())
    have = [workload("db", rev), workload("web", rev, state="created")]
    plan = p.plan_job("j1", assignment(), have, [f"ef-j1-{rev}"])
    assert plan.kind == "repair"
    assert plan.steps[0] == p.RemoveWorkloads((f"web-{rev}",))
    assert [s.service for s in plan.steps if isinstance(s, p.CreateAndStart)] == ["web"]
    # Mid-upgrade, with the old revision still serving: the new one starts over.
    old = [workload("db", "old"), workload("web", "old")]
    plan = p.plan_job("j1", assignment(), [*old, workload("db", rev, state="created")], [])
    assert plan.kind == "upgrade"
    assert plan.steps[0] == p.RemoveWorkloads((f"db-{rev}",))
    assert plan.steps[-2] == p.RemoveWorkloads(("db-old", "web-old"))


def test_nothing_to_do_when_everything_runs() -> None:
    rev = p.revision_of(assignment())
    have = [workload("db", rev), workload("web", rev)]
    assert p.plan_job("j1", assignment(), have, [f"ef-j1-{rev}"]).kind == "noop"


def test_a_removed_container_is_repaired_alone() -> None:
    rev = p.revision_of(assignment())
    plan = p.plan_job("j1", assignment(), [workload("db", rev)], [f"ef-j1-{rev}"])
    assert plan.kind == "repair"
    assert [s.service for s in plan.steps if isinstance(s, p.CreateAndStart)] == ["web"]


def test_upgrade_starts_new_before_retiring_old() -> None:
    old = p.revision_of(assignment("1"))
    have = [workload("db", old), workload("web", old)]
    plan = p.plan_job("j1", assignment("2"), have, [f"ef-j1-{old}"])
    assert plan.kind == "upgrade"
    names = kinds(plan)
    assert names.index("Verify") < names.index("RemoveWorkloads")
    retire = next(s for s in plan.steps if isinstance(s, p.RemoveWorkloads))
    assert set(retire.workload_ids) == {"db-" + old, "web-" + old}


def test_crash_mid_upgrade_restarts_the_new_revision_cleanly() -> None:
    old = p.revision_of(assignment("1"))
    new = p.revision_of(assignment("2"))
    have = [workload("db", old), workload("web", old), workload("db", new)]
    plan = p.plan_job("j1", assignment("2"), have, [])
    assert plan.kind == "upgrade"
    first = plan.steps[0]
    assert isinstance(first, p.RemoveWorkloads) and first.workload_ids == ("db-" + new,)


def test_complete_new_revision_finishes_the_upgrade() -> None:
    old = p.revision_of(assignment("1"))
    new = p.revision_of(assignment("2"))
    have = [workload("db", old), workload("db", new), workload("web", new)]
    plan = p.plan_job("j1", assignment("2"), have, [])
    assert plan.kind == "finish"


def test_removed_job_removes_everything() -> None:
    plan = p.plan_job("j1", None, [workload("db", "r")], ["ef-j1-r"])
    assert plan.kind == "remove" and kinds(plan) == [
        "RemoveWorkloads",
        "RemoveNetworks",
        "RemoveVolumes",
    ]
    assert p.plan_job("j1", None, [], []).kind == "noop"


async def test_queue_runs_one_change_per_job_and_coalesces() -> None:
    queue = ChangeQueue(limit=1)
    queue.want("a")
    queue.want("b")
    queue.want("a")
    assert await queue.wait() == "a"
    assert queue.take() is None  # at the limit
    queue.want("a")  # wanted again while running: runs again afterwards
    queue.done("a")
    assert await queue.wait() == "b"
    queue.done("b")
    assert await queue.wait() == "a"
    queue.done("a")
    assert queue.idle
    waiter = asyncio.create_task(queue.wait())
    await asyncio.sleep(0)
    queue.want("c")
    assert await asyncio.wait_for(waiter, 1) == "c"


async def test_queue_runs_different_jobs_side_by_side() -> None:
    queue = ChangeQueue(limit=2)
    for job in ("a", "b", "c"):
        queue.want(job)
    first, second = await queue.wait(), await queue.wait()
    assert {first, second} == {"a", "b"} and queue.running == {"a", "b"}
    assert queue.take() is None  # two at once, no more
    queue.want("a")  # never twice at once: "a" again only after it is done
    queue.done("b")
    assert await queue.wait() == "c"
    assert queue.take() is None
    queue.done("a")
    assert await queue.wait() == "a"
    queue.done("a")
    queue.done("c")
    assert queue.idle and "a" not in queue
    # Two workers waiting: each wakes for its own job.
    workers = [asyncio.create_task(queue.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    queue.want("x")
    queue.want("y")
    got = await asyncio.wait_for(asyncio.gather(*workers), 1)
    assert sorted(got) == ["x", "y"]


def test_retry_book_backs_off() -> None:
    book = RetryBook(base=10, cap=40)
    first = book.failed("j", "r", "boom", now=0)
    assert first.retry_at == 10 and book.blocked("j", "r", 5) is not None
    assert book.blocked("j", "r", 11) is None
    assert book.failed("j", "r", "boom", now=11).retry_at == 31
    assert book.failed("j", "r", "boom", now=31).retry_at == 71
    assert book.failed("j", "r", "boom", now=71).retry_at == 111  # capped at 40
    book.succeeded("j", "r")
    assert book.get("j", "r") is None
