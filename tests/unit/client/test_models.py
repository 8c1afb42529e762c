"""The client's typed answers stay true to the server: each TypedDict of
``edgefleet.client.models`` has exactly the fields of the response schema of
the route it types (nested ones too), read from the server's own OpenAPI
document. A field the server adds, drops or renames fails here, not in a
user's script."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Any

import pytest

from edgefleet.client import Client, models

# model -> the route whose 2xx answer it types
ROUTES: dict[Any, tuple[str, str] | tuple[str, str, str]] = {
    models.User: ("get", "/api/v1/users/me"),
    models.Token: ("delete", "/api/v1/tokens/{token_id}"),
    models.TokenCreated: ("post", "/api/v1/tokens"),
    models.Project: ("get", "/api/v1/projects/{project}"),
    models.ProvisioningKey: ("get", "/api/v1/provisioning-keys/{key_id}"),
    models.ProvisioningKeyCreated: ("post", "/api/v1/provisioning-keys"),
    models.Registry: ("post", "/api/v1/projects/{project}/registries"),
    models.Secret: ("get", "/api/v1/projects/{project}/secrets/{name}"),
    models.Variable: ("get", "/api/v1/projects/{project}/variables/{name}"),
    models.OidcInfo: ("get", "/api/v1/auth/oidc"),
    models.SsoToken: ("post", "/api/v1/auth/oidc/token"),
    models.SsoDeviceStart: ("post", "/api/v1/auth/oidc/device"),
    models.AlertRule: ("get", "/api/v1/projects/{project}/alert-rules/{rule}"),
    models.Webhook: ("get", "/api/v1/projects/{project}/webhooks/{webhook}"),
    models.WebhookCreated: ("post", "/api/v1/projects/{project}/webhooks"),
    models.Alert: ("get", "/api/v1/projects/{project}/alerts"),
    models.Device: ("get", "/api/v1/devices/{device}"),
    models.Event: ("get", "/api/v1/events"),
    models.ExecResult: ("post", "/api/v1/devices/{device}/exec"),
    models.MetricPoint: ("get", "/api/v1/devices/{device}/metrics"),
    models.Loan: ("post", "/api/v1/devices/{device}/loans"),
    models.Reservation: ("get", "/api/v1/reservations/{reservation}"),
    models.ReservationDryRun: ("post", "/api/v1/reservations", "200"),
    models.Requirement: ("get", "/api/v1/projects/{project}/device-requirements"),
    models.Application: ("get", "/api/v1/applications/{app}"),
    models.Version: ("get", "/api/v1/applications/{app}/versions/{version}"),
    models.Validation: ("post", "/api/v1/applications/validate"),
    models.BuildContext: ("post", "/api/v1/build-contexts"),
    models.Job: ("get", "/api/v1/jobs/{job}"),
    models.JobDevice: ("get", "/api/v1/jobs/{job}/devices"),
    models.JobRun: ("get", "/api/v1/jobs/{job}/runs"),
    models.Dataset: ("get", "/api/v1/datasets"),
    models.Computation: ("get", "/api/v1/computations/{computation}"),
    models.Record: ("get", "/api/v1/jobs/{job}/data"),
    models.DataSummary: ("get", "/api/v1/jobs/{job}/data/summary"),
    models.DataFile: ("get", "/api/v1/jobs/{job}/files/{file}"),
    models.AgentRelease: ("post", "/api/v1/agent-releases"),
    models.AgentUpgrade: ("get", "/api/v1/agent-upgrades/{upgrade}"),
    models.Launchable: ("get", "/api/v1/applications/{app}/launchable"),
    models.Instance: ("get", "/api/v1/instances/{instance}"),
    models.InstanceSave: ("get", "/api/v1/instances/{instance}/saves/{save}"),
    models.Volume: ("post", "/api/v1/projects/{project}/volumes"),
    models.VolumeDetail: ("get", "/api/v1/projects/{project}/volumes/{name}"),
}


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from edgefleet.server.app import create_app
    from edgefleet.server.settings import ServerSettings

    data_dir: Path = tmp_path_factory.mktemp("server")
    return create_app(ServerSettings(data_dir=data_dir), announce=lambda _: None).openapi()


def _ref(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema a (possibly nullable, listed or mapped) field points to."""
    if "$ref" in schema:
        found: dict[str, Any] = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
        return found
    for inner in schema.get("anyOf", []):
        if (ref := _ref(inner, spec)) is not None:
            return ref
    if isinstance(schema.get("items"), dict):
        return _ref(schema["items"], spec)
    return None


def _answer(spec: dict[str, Any], method: str, path: str, code: str = "") -> dict[str, Any]:
    responses = spec["paths"][path][method]["responses"]
    code = code or next(code for code in responses if code.startswith("2"))
    schema = _ref(responses[code]["content"]["application/json"]["schema"], spec)
    assert schema is not None, f"{method} {path} answers no object"
    if {"items", "next"} <= set(schema["properties"]):  # a page: the model types one item
        item = _ref(schema["properties"]["items"], spec)
        assert item is not None
        return item
    return schema


def _typed_dict(hint: Any) -> Any:
    """The TypedDict inside ``X | None``, ``list[X]`` or ``dict[str, X]``, if any."""
    if typing.is_typeddict(hint):
        return hint
    for arg in typing.get_args(hint):
        if (found := _typed_dict(arg)) is not None:
            return found
    return None


def _mismatches(model: Any, schema: dict[str, Any], spec: dict[str, Any], at: str) -> list[str]:
    keys = set(model.__required_keys__ | model.__optional_keys__)
    fields = set(schema.get("properties", {}))
    problems = [f"{at}: client lacks {sorted(fields - keys)}"] if fields - keys else []
    if keys - fields:
        problems.append(f"{at}: server has no {sorted(keys - fields)}")
    hints = typing.get_type_hints(model)
    for name in sorted(keys & fields):
        nested = _typed_dict(hints[name])
        inner = _ref(schema["properties"][name], spec)
        if nested is not None and inner is not None:
            problems += _mismatches(nested, inner, spec, f"{at}.{name}")
    return problems


@pytest.mark.parametrize("model", list(ROUTES), ids=lambda m: m.__name__)
def test_a_model_has_the_fields_of_its_answer(model: Any, openapi: dict[str, Any]) -> None:
    schema = _answer(openapi, *ROUTES[model])
    assert _mismatches(model, schema, openapi, model.__name__) == []


def test_every_model_of_an_answer_is_checked() -> None:
    """A model added to the package without a route here would drift unseen."""
    nested: set[Any] = set()
    todo = list(ROUTES)
    while todo:
        for hint in typing.get_type_hints(todo.pop()).values():
            if (inner := _typed_dict(hint)) is not None and inner not in nested:
                nested.add(inner)
                todo.append(inner)
    unchecked = {
        name
        for name in models.__all__
        if getattr(models, name) not in ROUTES and getattr(models, name) not in nested
    }
    # a device poll is a token or a status: its fields are those of SsoToken plus status
    assert unchecked == {"SsoDevicePoll"}
    poll = models.SsoDevicePoll
    assert poll.__optional_keys__ == models.SsoToken.__required_keys__ | {"status"}


def test_every_public_call_says_what_it_does() -> None:
    calls = {
        name: member
        for name, member in inspect.getmembers(Client, inspect.isfunction)
        if not name.startswith("_")
    }
    assert len(calls) > 60
    undocumented = sorted(name for name, call in calls.items() if not inspect.getdoc(call))
    assert undocumented == []


def test_calls_answer_models_not_bare_dicts() -> None:
    """Only the untyped plumbing and the free-form answers stay ``dict[str, Any]``."""
    free_form = {"health", "device_action"}
    plumbing = {"request", "get", "post", "patch", "put", "delete", "paged"}
    bare = sorted(
        name
        for name, call in inspect.getmembers(Client, inspect.isfunction)
        if not name.startswith("_")
        and name not in plumbing
        and typing.get_type_hints(call).get("return") == dict[str, Any]
    )
    assert [name for name in bare if name not in free_form] == []
