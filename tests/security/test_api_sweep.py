"""A property-based sweep of the whole OpenAPI document: no input answers 5xx.

Schemathesis generates a few requests per operation from ``/api/openapi.json``
of a real ``edgefleet server`` process (derandomized, so a failure reproduces)
and sends them with the admin's token, the caller who reaches the most code.
Every answer must be below 500, and a 2xx must match the response schema the
document declares (the pinned shapes are response models).

The admin must stay signed in for the whole sweep, so a generated case that
would revoke the admin's own token or delete or re-password the admin is
pointed at a user/token that does not exist instead (the operation is still
swept). ``GET /events/stream`` never ends by design: it is left out here and
opened by the role matrix (``test_role_matrix.py``) instead.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Flaky, Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.support.procs import ADMIN_TOKEN, ServerProc, stop_all

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
STREAMS = re.compile(r"^/api/v1/events/stream$")
CHECKS = [not_a_server_error, response_schema_conformance]
# Per operation and per mode (valid, invalid): a sweep, not a soak. Raise it
# by hand to hunt (EDGEFLEET_SWEEP_EXAMPLES=200); `make test` keeps it short.
EXAMPLES = int(os.environ.get("EDGEFLEET_SWEEP_EXAMPLES", "5"))


class SweepTarget:
    """The server under the sweep and the admin's identifiers to protect."""

    def __init__(self, server: ServerProc) -> None:
        self.server = server
        with server.http() as http:
            me = http.get("/api/v1/users/me").raise_for_status().json()
            tokens = http.get("/api/v1/tokens").raise_for_status().json()["items"]
        self.admin_names = {str(me["id"]), str(me["name"])}
        self.admin_token_ids = {str(t["id"]) for t in tokens}
        self.started = time.monotonic()


@pytest.fixture(scope="module")
def sweep_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SweepTarget]:
    workdir: Path = tmp_path_factory.mktemp("api-sweep")
    server = ServerProc(workdir)
    server.start()
    try:
        yield SweepTarget(server)
    finally:
        stop_all([server])


def _protect_admin(case: Case, target: SweepTarget) -> None:
    """Point a case that would lock the admin out at someone who does not exist."""
    params = case.path_parameters if case.path_parameters is not None else {}
    if params.get("user") in target.admin_names and case.method in {"DELETE", "PUT"}:
        params["user"] = "sweep-nobody"
    if params.get("token_id") in target.admin_token_ids:
        params["token_id"] = "sweep-no-such-token"


def _sweep(operation: APIOperation, mode: GenerationMode, target: SweepTarget) -> str | None:
    """Run one operation's examples; the first failure's report, or None.

    Hypothesis can call schemathesis' own generation flaky (a replay drew
    differently, or a ``reject()`` inside the strategy did not repeat): seen on
    a loaded machine, with no request answered badly. Such an operation is swept
    once more; a flaky run that holds a failed check is a failure, not a retry.
    """
    try:
        return _sweep_once(operation, mode, target)
    except Flaky as flaky:
        inner = flaky.exceptions if isinstance(flaky, BaseExceptionGroup) else ()
        if any(isinstance(exc, FailureGroup) for exc in inner):
            return f"{operation.label} ({mode.value}), flaky: {flaky!r}"
        return _sweep_once(operation, mode, target)


def _sweep_once(operation: APIOperation, mode: GenerationMode, target: SweepTarget) -> str | None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        _protect_admin(case, target)
        case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=20)

    try:
        run()
    except FailureGroup as failure:
        return f"{operation.label} ({mode.value}): {failure}"
    except Unsatisfiable:
        # Nothing to make invalid (no parameters, no body): valid cases cover it.
        if mode is not GenerationMode.NEGATIVE:
            raise
    return None


@pytest.mark.timeout(900)  # 130-150 s alone; twice that on a loaded CI machine
def test_no_input_answers_5xx(sweep_target: SweepTarget) -> None:
    schema = schemathesis.openapi.from_url(f"{sweep_target.server.url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50, "the OpenAPI document lost its operations"
    failures: list[str] = []
    swept = 0
    for operation in operations:
        if STREAMS.match(operation.path):
            continue
        swept += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            report = _sweep(operation, mode, sweep_target)
            if report is not None:
                failures.append(report)
    elapsed = time.monotonic() - sweep_target.started
    print(f"swept {swept} operations in {elapsed:.0f} s")
    assert not failures, "\n\n".join(failures)


def test_admin_survives_the_sweep(sweep_target: SweepTarget) -> None:
    """Runs after the sweep (file order): the admin's token still works and the
    server is healthy, so the sweep really ran signed in to the end."""
    with sweep_target.server.http() as http:
        assert http.get("/api/v1/users/me").json()["name"] == "admin"
    health = httpx.get(f"{sweep_target.server.url}/api/v1/health", timeout=5).json()
    assert health["status"] == "ok"
