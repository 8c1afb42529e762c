"""Compose ``build:`` (issue 21): refused with today's message unless the
version carries a build context; then read into the spec, paths kept inside."""

from __future__ import annotations

import pytest

from edgefleet.spec import compose
from edgefleet.spec.keys import REFUSED_SERVICE_KEYS


def _errors(text: str, builds: bool) -> list[str]:
    with pytest.raises(compose.SpecInvalid) as caught:
        compose.parse(text, builds=builds)
    return [f.message for f in caught.value.findings if f.level == "error"]


def test_without_a_context_build_keeps_todays_refusal() -> None:
    text = "services:\n  web:\n    build: .\n"
    assert _errors(text, builds=False) == [REFUSED_SERVICE_KEYS["build"]]


def test_string_and_mapping_forms_are_read() -> None:
    spec, _ = compose.parse("services:\n  web:\n    build: ./app/\n", builds=True)
    assert spec.services["web"].build is not None
    assert spec.services["web"].build.context == "app"
    text = (
        "services:\n  web:\n    build:\n      context: src\n      dockerfile: docker/Containerfile\n"
        "      args: [A=1, B]\n      target: prod\n"
    )
    build = compose.parse(text, builds=True)[0].services["web"].build
    assert build is not None
    assert (build.context, build.dockerfile, build.target) == (
        "src",
        "docker/Containerfile",
        "prod",
    )
    assert build.args == {"A": "1", "B": ""}
    assert build.digest is None  # set by the server at deploy time


@pytest.mark.parametrize(
    ("build", "message"),
    [
        ("../up", "inside the uploaded build context"),
        ("/abs", "inside the uploaded build context"),
        ("{context: ., dockerfile: ../../Dockerfile}", "inside the uploaded build context"),
        ("{context: ., ssh: [default]}", "build.ssh is not supported"),
        ("[a, b]", "build is a context path or a mapping"),
    ],
)
def test_paths_leaving_the_context_and_unknown_keys_are_refused(build: str, message: str) -> None:
    errors = _errors(f"services:\n  web:\n    build: {build}\n", builds=True)
    assert any(message in e for e in errors), errors


def test_a_process_service_cannot_build() -> None:
    text = (
        "services:\n  job:\n    x-edgefleet-runtime: process\n    command: [true]\n    build: .\n"
    )
    assert any("no image to build" in e for e in _errors(text, builds=True))
