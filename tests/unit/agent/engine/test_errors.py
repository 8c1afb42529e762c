"""An engine's error answers become the errors callers catch: a 404 about an
image is ImageNotFound, any other 404 NotFound, the rest APIError, each with
the engine's own sentence (Docker's and Podman's bodies)."""

from __future__ import annotations

from edgefleet.agent.engine.errors import (
    APIError,
    EngineError,
    ImageNotFound,
    NotFound,
    api_error,
    explanation_of,
)

PODMAN_404 = b'{"cause":"no such container","message":"no container with name or ID \\"x\\" found: no such container","response":404}'


def test_404s_by_what_they_are_about() -> None:
    image = api_error(404, b'{"message":"No such image: localhost/nope:1"}', "GET /images/x/json")
    assert type(image) is ImageNotFound and image.explanation == "No such image: localhost/nope:1"
    podman_image = api_error(404, b'{"message":"localhost/nope:1: image not known"}', "")
    assert type(podman_image) is ImageNotFound
    container = api_error(404, PODMAN_404, "GET /containers/x/json")
    assert type(container) is NotFound
    assert container.explanation == 'no container with name or ID "x" found: no such container'
    assert str(container).startswith("404 GET /containers/x/json: no container")


def test_other_statuses_are_api_errors_with_the_engines_words() -> None:
    conflict = api_error(409, b'{"message":"volume is being used"}', "DELETE /volumes/v")
    assert type(conflict) is APIError and not isinstance(conflict, NotFound)
    assert (conflict.status_code, conflict.explanation) == (409, "volume is being used")
    assert isinstance(conflict, EngineError)
    assert api_error(500, b"", "").explanation == "HTTP 500"
    assert explanation_of(b"plain text from a proxy\n") == "plain text from a proxy"
