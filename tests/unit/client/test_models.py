"""The client's typed answers stay true to the server: ``edgefleet.client.models``
is written by ``scripts/gen_client_models.py`` from the server's own OpenAPI
document, so a field the server adds, drops or renames fails here (the
committed files differ from a fresh generation), not in a user's script."""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from edgefleet.client import Client, models

ROOT = Path(__file__).resolve().parents[3]
MODELS = ROOT / "edgefleet" / "client" / "models"


def _load_generator() -> ModuleType:
    """scripts/ is no package: load the generator from its file."""
    spec = importlib.util.spec_from_file_location(
        "gen_client_models", ROOT / "scripts" / "gen_client_models.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
ROUTE_MODELS = [model for module in gen.load_modules() for model in module.models if model.route]


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = gen.build_openapi()
    return document


def test_the_committed_models_are_what_the_generator_writes(
    openapi: dict[str, Any], tmp_path: Path
) -> None:
    written = {path.name: path.read_text() for path in gen.write(openapi, tmp_path)}
    committed = {path.name: path.read_text() for path in MODELS.glob("*.py")}
    stale = sorted(
        name
        for name in written.keys() | committed.keys()
        if written.get(name) != committed.get(name)
    )
    assert stale == [], (
        f"{stale} differ from the server's OpenAPI: run scripts/gen_client_models.py"
    )


@pytest.mark.parametrize("model", ROUTE_MODELS, ids=lambda model: model.name)
def test_a_model_has_the_fields_of_its_answer(model: Any, openapi: dict[str, Any]) -> None:
    """Read back through typing, each class has exactly its answer's fields
    (nested ones too): the generated text means what the generator meant."""
    typed = getattr(models, model.name)
    schemas = gen.answer_schemas(openapi, model)
    properties = {
        name: field for _, schema in schemas for name, field in schema["properties"].items()
    }
    assert _mismatches(typed, properties, openapi, model.name) == []


def _typed_dict(hint: Any) -> Any:
    """The TypedDict inside ``X | None``, ``list[X]`` or ``dict[str, X]``, if any."""
    if typing.is_typeddict(hint):
        return hint
    for arg in typing.get_args(hint):
        if (found := _typed_dict(arg)) is not None:
            return found
    return None


def _nested(field: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any] | None:
    ref = gen._object_ref(field)
    return None if ref is None else spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def _mismatches(typed: Any, properties: dict[str, Any], spec: dict[str, Any], at: str) -> list[str]:
    keys = set(typed.__required_keys__ | typed.__optional_keys__)
    problems = (
        [f"{at}: client lacks {sorted(properties.keys() - keys)}"]
        if properties.keys() - keys
        else []
    )
    if keys - properties.keys():
        problems.append(f"{at}: server has no {sorted(keys - properties.keys())}")
    hints = typing.get_type_hints(typed)
    for name in sorted(keys & properties.keys()):
        inner = _nested(properties[name], spec)
        if (nested := _typed_dict(hints[name])) is not None and inner is not None:
            problems += _mismatches(nested, inner["properties"], spec, f"{at}.{name}")
    return problems


def test_a_merged_answer_makes_every_field_optional() -> None:
    """A device poll is a pending status or a token: either set of keys may be absent."""
    poll = models.SsoDevicePoll
    assert poll.__required_keys__ == frozenset()
    assert poll.__optional_keys__ == models.SsoToken.__required_keys__ | {"status"}
    assert models.TokenCreated.__required_keys__ == models.Token.__required_keys__ | {"token"}


def _tiny_spec(inner: dict[str, Any]) -> dict[str, Any]:
    answer = {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ThingOut"}}}
    }
    thing = {
        "type": "object",
        "description": "A thing.\n\nMore words.",
        "properties": {
            "when": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "inner": {"items": {"$ref": "#/components/schemas/Inner"}, "type": "array"},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    }
    return {
        "paths": {"/things/{id}": {"get": {"responses": {"200": answer}}}},
        "components": {"schemas": {"ThingOut": thing, "Inner": inner}},
    }


def _render(spec: dict[str, Any], *extra: Any, base: str = "") -> dict[str, str]:
    thing = gen.Model("Thing", "unused: the schema says", route="GET /things/{id}", base=base)
    module = gen.Module("things", "things", (*extra, thing))
    return dict(gen.render(spec, [module]))


def test_the_generator_writes_sorted_typed_fields_and_the_schema_s_first_sentence() -> None:
    spec = _tiny_spec({"type": "object", "properties": {"b": {"type": "number"}, "a": {}}})
    text = _render(spec, gen.Model("Inner", "Part of a thing.", schema="Inner"))["things.py"]
    assert text.startswith(gen.HEADER)
    assert "from typing import Any, TypedDict" in text
    assert (
        'class Inner(TypedDict):\n    """Part of a thing."""\n\n    a: Any\n    b: float\n' in text
    )
    assert (
        'class Thing(TypedDict):\n    """A thing."""\n\n'
        "    counts: dict[str, int]\n    inner: list[Inner]\n    when: str | None\n"
    ) in text


def test_the_generator_refuses_an_openapi_that_no_longer_fits_its_table() -> None:
    spec = _tiny_spec({"type": "object", "properties": {"a": {"type": "string"}}})
    with pytest.raises(gen.Drift, match="schema Inner has no model"):
        _render(spec)
    inner = gen.Model("Inner", "Part of a thing.", schema="Inner")
    with pytest.raises(gen.Drift, match="Thing no longer has every field of Inner"):
        _render(spec, inner, base="Inner")
    del spec["paths"]["/things/{id}"]
    with pytest.raises(gen.Drift, match=re.escape("the server has no GET /things/{id}")):
        _render(spec, inner)


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
