"""Variable interpolation: Compose's syntax, and how upload time (no
environment) differs from deploy time (the job's environment)."""

from __future__ import annotations

from textwrap import dedent

import pytest

from edgefleet.spec.compose import SpecInvalid, parse, validate
from edgefleet.spec.findings import Report
from edgefleet.spec.interpolate import Interpolator
from edgefleet.spec.model import Port


def expand(text: str, env: dict[str, str] | None) -> tuple[str, Report]:
    report = Report(upload=env is None)
    return Interpolator(report, env).string(text, ("k",)), report


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("plain", {}, "plain"),
        ("${A}", {"A": "1"}, "1"),
        ("$A/$B", {"A": "x", "B": "y"}, "x/y"),
        ("$A_B-$A", {"A_B": "1", "A": "2"}, "1-2"),
        ("${A:-def}", {}, "def"),
        ("${A:-def}", {"A": ""}, "def"),
        ("${A:-def}", {"A": "set"}, "set"),
        ("${A-def}", {"A": ""}, ""),
        ("${A-def}", {}, "def"),
        ("${A:+alt}", {"A": "x"}, "alt"),
        ("${A:+alt}", {"A": ""}, ""),
        ("${A+alt}", {"A": ""}, "alt"),
        ("${A+alt}", {}, ""),
        ("${A:?need A}", {"A": "ok"}, "ok"),
        ("${A?need A}", {"A": ""}, ""),
        ("$$HOME and $${B}", {}, "$HOME and ${B}"),
        ("${A:-${B:-inner}}", {}, "inner"),
        ("${A:-${B}}", {"B": "b"}, "b"),
        ("${A:-a:b}c", {}, "a:bc"),
        ("pre-${A}-post", {"A": "mid"}, "pre-mid-post"),
    ],
)
def test_syntax(text: str, env: dict[str, str], expected: str) -> None:
    result, report = expand(text, env)
    assert result == expected
    assert not report.has_errors


@pytest.mark.parametrize("text", ["cost: $5", "${}", "${A", "${A!x}", "${1A}", "trailing $"])
def test_invalid_interpolation_is_an_error(text: str) -> None:
    result, report = expand(text, {})
    assert result == text
    [finding] = report.ordered()
    assert finding.level == "error"
    assert "write $$ for a literal $" in finding.message


def test_unused_default_is_not_looked_up() -> None:
    _, report = expand("${A:-${MISSING}}", {"A": "set"})
    assert report.ordered() == []


def test_only_variable_strings_are_tainted() -> None:
    _, report = expand("$$literal", None)
    assert report.tainted == set()
    _, report = expand("${A:-x}", None)
    assert report.tainted == {("k",)}


APP = dedent("""\
    services:
      web:
        image: ghcr.io/example/web:${TAG:-latest}
        command: ["serve", "--port", "${PORT:-8000}"]
        environment:
          DATABASE_URL: postgres://app:${DB_PASSWORD:?set the database password}@db/app
          MODE: ${MODE}
          HOME_DIR: $$HOME
          FROM_JOB:
        ports: ["${PORT:-8000}"]
        restart: ${RESTART:-unless-stopped}
        read_only: ${READ_ONLY:-true}
        labels:
          ${NOT_A_KEY}: kept
          x-version: ${TAG:-latest}
        x-service-notes: ${NOT_READ_EITHER}
      db:
        image: postgres:${PG_VERSION-16}
    x-notes: ${NEVER_READ}
    x-edgefleet:
      requires:
        memory: ${MEMORY:-256M}
    """)


def test_upload_time_resolves_defaults_and_warns() -> None:
    spec, warnings = parse(APP)
    web = spec.services["web"]
    assert web.image == "ghcr.io/example/web:latest"
    assert web.command == ["serve", "--port", "8000"]
    assert web.environment == {
        "DATABASE_URL": "postgres://app:@db/app",
        "MODE": "",
        "HOME_DIR": "$HOME",
    }
    assert web.ports == [Port(target=8000)]
    assert web.restart == "unless-stopped"
    assert web.read_only is True
    assert web.labels == {"${NOT_A_KEY}": "kept", "x-version": "latest"}
    assert spec.services["db"].image == "postgres:16"
    assert spec.requires.memory == 256 << 20
    assert [(f.key, f.line) for f in warnings] == [
        ("services.web.environment.DATABASE_URL", 6),
        ("services.web.environment.MODE", 7),
    ]
    assert warnings[0].message == (
        "variable DB_PASSWORD is required at deploy time: set the database password"
    )
    assert "set MODE in the job's environment" in warnings[1].message


def test_deploy_time_uses_exactly_the_given_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODE", "from-the-server-process")
    env = {
        "TAG": "2.0",
        "DB_PASSWORD": "s3cret",
        "PORT": "9000",
        "RESTART": "always",
        "READ_ONLY": "no",
        "PG_VERSION": "",
        "FROM_JOB": "job value",
    }
    spec, warnings = parse(APP, environment=env)
    web = spec.services["web"]
    assert web.image == "ghcr.io/example/web:2.0"
    assert web.command == ["serve", "--port", "9000"]
    assert web.environment == {
        "DATABASE_URL": "postgres://app:s3cret@db/app",
        "MODE": "",
        "HOME_DIR": "$HOME",
        "FROM_JOB": "job value",
    }
    assert web.ports == [Port(target=9000)]
    assert (web.restart, web.read_only) == ("always", False)
    assert spec.services["db"].image == "postgres:"
    assert [(f.key, f.line) for f in warnings] == [("services.web.environment.MODE", 7)]
    assert "not set in the job's environment" in warnings[0].message


def test_deploy_time_missing_required_variable_is_an_error() -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse(APP, environment={"MODE": "x"})
    assert str(caught.value) == (
        "services.web.environment.DATABASE_URL: variable DB_PASSWORD is required: "
        "set the database password; set it in the job's environment"
    )
    assert caught.value.findings[0].line == 6


VARIABLE_VALUES = dedent("""\
    services:
      web:
        image: ${IMAGE}
        ports: ["${PORT}"]
        restart: ${POLICY}
        healthcheck:
          test: curl -f localhost
          interval: ${INTERVAL}
        depends_on:
          db: {condition: "${CONDITION:-service_healthy}"}
        volumes: ["${VOLUME:-data}:/data"]
        mem_limit: ${MEM:-lots}
        cpus: 2x
      db:
        image: postgres
        healthcheck: {test: pg_isready}
    volumes:
      data:
    """)


def test_upload_time_variable_values_that_fail_are_warnings() -> None:
    findings = validate(VARIABLE_VALUES)
    # An unset variable is one warning; a default that is invalid is another.
    assert [(f.level, f.key, f.line) for f in findings] == [
        ("warning", "services.web.image", 3),
        ("warning", "services.web.ports[0]", 4),
        ("warning", "services.web.restart", 5),
        ("warning", "services.web.healthcheck.interval", 8),
        ("warning", "services.web.mem_limit", 12),
        ("error", "services.web.cpus", 13),
    ]
    assert "variable IMAGE has no default" in findings[0].message
    assert "'lots' is not a size" in findings[4].message
    assert findings[4].message.endswith("checked again at deploy time)")


def test_deploy_time_variable_values_that_fail_are_errors() -> None:
    env = {"IMAGE": "web:1", "PORT": "http", "POLICY": "always", "INTERVAL": "10s", "MEM": "1G"}
    errors = [f for f in validate(VARIABLE_VALUES, environment=env) if f.level == "error"]
    assert [(f.key, f.line) for f in errors] == [
        ("services.web.ports[0]", 4),
        ("services.web.cpus", 13),
    ]
    good = VARIABLE_VALUES.replace("cpus: 2x", "cpus: 2")
    spec, _ = parse(good, environment={**env, "PORT": "8080", "VOLUME": "data"})
    web = spec.services["web"]
    assert (web.image, web.ports, web.restart, web.mem_limit) == (
        "web:1",
        [Port(target=8080)],
        "always",
        1 << 30,
    )
    assert web.healthcheck is not None
    assert web.healthcheck.interval == 10


def test_variable_naming_an_undeclared_volume() -> None:
    findings = validate(VARIABLE_VALUES.replace("cpus: 2x", ""), environment={"VOLUME": "other"})
    errors = [(f.key, f.line) for f in findings if f.level == "error"]
    assert ("services.web.volumes[0]", 11) in errors


def test_json_source_is_interpolated_too() -> None:
    spec, warnings = parse(
        {"services": {"a": {"image": "x:${T:-1}", "command": "echo ${WHO}"}}},
        environment={"WHO": "world"},
    )
    assert spec.services["a"].image == "x:1"
    assert spec.services["a"].command == ["echo", "world"]
    assert warnings == []
