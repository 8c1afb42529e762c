"""Attacks on project secrets and variables (issue 19).

Only operators and owners write secrets, nobody reads one back; another
project's secret is as if it did not exist; oversized or malformed input is
refused naming the field, storing nothing, and no answer ever repeats the
value it was given."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.security.conftest import OUTSIDER, Estate, P, Q
from tests.support.procs import base_env

VALUE = "Hunter2-do-not-echo-7c1"
PROCESS_APP = {
    "services": {
        "web": {
            "x-edgefleet-runtime": "process",
            "command": ["sleep", "3600"],
        },
        "box": {"image": "localhost/none:1", "secrets": ["q_only"]},
    },
    "secrets": {"q_only": {"external": True}},
}


def _secrets(estate: Estate, project: str) -> list[dict[str, object]]:
    with estate.http() as admin:
        got = admin.get(f"/api/v1/projects/{project}/secrets")
        got.raise_for_status()
        return list(got.json()["items"])


@pytest.fixture
def q_secret(estate: Estate) -> Iterator[str]:
    """A secret of project Q, made by Q's owner (the outsider to P)."""
    with estate.http(OUTSIDER) as outsider:
        made = outsider.post(
            f"/api/v1/projects/{Q}/secrets", json={"name": "q_only", "value": VALUE}
        )
        assert made.status_code == 201, made.text
        assert VALUE not in made.text and "value" not in made.json()
        yield "q_only"
        outsider.delete(f"/api/v1/projects/{Q}/secrets/q_only").raise_for_status()


def test_viewer_and_developer_cannot_write_secrets(estate: Estate) -> None:
    before = _secrets(estate, P)
    for who in ("viewer", "developer"):
        with estate.http(who) as http:
            attempts = [
                http.post(f"/api/v1/projects/{P}/secrets", json={"name": "x", "value": VALUE}),
                http.put(f"/api/v1/projects/{P}/secrets/x", json={"value": VALUE}),
                http.delete(f"/api/v1/projects/{P}/secrets/x"),
            ]
            for answer in attempts:
                assert answer.status_code == 403, (who, answer.text)
                assert VALUE not in answer.text
    assert _secrets(estate, P) == before


def test_nobody_reads_a_secret_back(estate: Estate, q_secret: str) -> None:
    with estate.http(OUTSIDER) as owner, estate.http() as admin:
        for http in (owner, admin):
            one = http.get(f"/api/v1/projects/{Q}/secrets/{q_secret}")
            listed = http.get(f"/api/v1/projects/{Q}/secrets")
            for answer in (one, listed):
                assert answer.status_code == 200 and VALUE not in answer.text
            assert set(one.json()) >= {"name", "version", "updated_by", "updated_at"}
            assert "value" not in one.json()
    with estate.http("owner") as p_owner:  # owner of P, not a member of Q
        assert p_owner.get(f"/api/v1/projects/{Q}/secrets").status_code == 404
        assert p_owner.get(f"/api/v1/projects/{Q}/secrets/{q_secret}").status_code == 404


def test_another_projects_secret_is_as_if_it_did_not_exist(estate: Estate, q_secret: str) -> None:
    """P's developer names Q's secret in a Compose file: the job is refused with
    the same answer as for a name no project has, and nothing is deployed."""
    with estate.http("developer") as http:
        made = http.post(
            "/api/v1/applications",
            json={"project": P, "name": "sec-thief", "version": "1", "spec": PROCESS_APP},
        )
        assert made.status_code == 201, made.text
        try:
            jobs_before = len(http.get("/api/v1/jobs", params={"limit": 1000}).json()["items"])
            stolen = http.post(
                "/api/v1/jobs", json={"application": "sec-thief", "devices": [estate.device]}
            )
            assert stolen.status_code == 422, stolen.text
            error = stolen.json()["error"]
            assert error["field"] == "secrets"
            assert f"project {P} has no secret 'q_only'" in error["message"]
            assert VALUE not in stolen.text
            # A name no project has: the very same answer.
            unknown = {**PROCESS_APP, "secrets": {"q_only": {"external": True, "name": "nobody"}}}
            added = http.post(
                "/api/v1/applications/sec-thief/versions", json={"version": "2", "spec": unknown}
            )
            assert added.status_code == 201, added.text
            missing = http.post(
                "/api/v1/jobs",
                json={"application": "sec-thief", "version": "2", "devices": [estate.device]},
            )
            assert missing.status_code == 422, missing.text
            assert missing.json()["error"]["field"] == "secrets"
            assert f"project {P} has no secret 'nobody'" in missing.json()["error"]["message"]
            jobs_after = len(http.get("/api/v1/jobs", params={"limit": 1000}).json()["items"])
            assert jobs_after == jobs_before
        finally:
            http.delete("/api/v1/applications/sec-thief").raise_for_status()


def test_oversized_and_malformed_input_is_refused_without_echo(estate: Estate) -> None:
    before = _secrets(estate, P)
    huge = VALUE + "x" * (64 * 1024)
    with estate.http("operator") as http:
        cases: list[tuple[httpx.Response, str]] = [
            (
                http.post(f"/api/v1/projects/{P}/secrets", json={"name": "big", "value": huge}),
                "value",
            ),
            (http.put(f"/api/v1/projects/{P}/secrets/big", json={"value": huge}), "value"),
            (
                http.post(
                    f"/api/v1/projects/{P}/secrets", json={"name": "n" * 129, "value": VALUE}
                ),
                "name",
            ),
            (
                http.post(f"/api/v1/projects/{P}/secrets", json={"name": "../etc", "value": VALUE}),
                "name",
            ),
            (http.put(f"/api/v1/projects/{P}/secrets/-bad", json={"value": VALUE}), "name"),
            (http.post(f"/api/v1/projects/{P}/secrets", json={"name": "e", "value": ""}), "value"),
            (
                http.post(f"/api/v1/projects/{P}/secrets", json={"name": "t", "value": [VALUE]}),
                "value",
            ),
            (
                http.post(
                    f"/api/v1/projects/{P}/secrets",
                    json={"name": "x", "value": VALUE, "extra": VALUE},
                ),
                "extra",
            ),
            (http.put(f"/api/v1/projects/{P}/variables/BIG", json={"value": huge}), "value"),
            (http.put(f"/api/v1/projects/{P}/variables/1BAD", json={"value": VALUE}), "name"),
            (
                http.put(
                    f"/api/v1/projects/{P}/variables/SEL",
                    json={"value": VALUE, "selector": "a b c ((("},
                ),
                "selector",
            ),
            (
                http.put(
                    f"/api/v1/devices/{estate.device}/variables/SEL",
                    json={"value": VALUE, "selector": "site=a"},
                ),
                "selector",
            ),
        ]
        for answer, field in cases:
            assert answer.status_code == 422, (field, answer.text[:300])
            assert answer.json()["error"]["field"] == field, answer.text[:300]
            assert VALUE not in answer.text, answer.text[:300]
        variables = http.get(f"/api/v1/projects/{P}/variables").json()["items"]
        assert variables == []
        assert http.get(f"/api/v1/devices/{estate.device}/variables").json()["items"] == []
    assert _secrets(estate, P) == before


def test_cli_takes_values_from_stdin_never_prints_them_and_sets_variables(
    estate: Estate,
) -> None:
    env = base_env(EDGEFLEET_SERVER=estate.url, EDGEFLEET_TOKEN=estate.tokens[OUTSIDER])

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "edgefleet", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    made = cli("secrets", "create", "cli_one", "--value-stdin", "-p", Q, "-o", "json", stdin=VALUE)
    assert made.returncode == 0, made.stderr
    try:
        again = cli("secrets", "create", "cli_one", "--value-stdin", "-p", Q, stdin=VALUE)
        assert again.returncode != 0 and "Traceback" not in again.stderr
        assert "already has a secret" in again.stderr + again.stdout
        rotated = cli("secrets", "rotate", "cli_one", "--value-stdin", "-p", Q, stdin=VALUE + "2")
        assert rotated.returncode == 0, rotated.stderr
        listed = cli("secrets", "list", "-p", Q, "-o", "json")
        assert '"version": 2' in listed.stdout
        for run in (made, again, rotated, listed):
            assert VALUE not in run.stdout + run.stderr
        refused = cli("secrets", "create", "cli_two", "--value-stdin", "-p", P, stdin=VALUE)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert VALUE not in refused.stdout + refused.stderr
        variable = cli("variables", "set", "REGION", "eu", "--selector", "site=a", "-p", Q)
        assert variable.returncode == 0 and "selector site=a" in variable.stdout, variable.stderr
        listed = cli("variables", "list", "-p", Q, "-o", "json")
        assert '"REGION"' in listed.stdout and '"site=a"' in listed.stdout
        bad = cli("variables", "set", "1BAD", "x", "-p", Q)
        assert bad.returncode != 0 and "Traceback" not in bad.stderr and "name" in bad.stderr
        unset = cli("variables", "unset", "REGION", "--selector", "site=a", "-p", Q)
        assert unset.returncode == 0, unset.stderr
        assert cli("variables", "list", "-p", Q, "-o", "json").stdout.count("REGION") == 0
    finally:
        assert cli("secrets", "rm", "cli_one", "-p", Q).returncode == 0
