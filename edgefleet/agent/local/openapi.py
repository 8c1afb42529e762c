"""The local API's OpenAPI 3.1 document, built from the answers' pydantic models.

Hand-built (the agent has no web framework to generate it): one table of
operations, each naming its response model; the schemas come from
``model_json_schema`` so the document cannot drift from what is answered.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from edgefleet import __version__
from edgefleet.agent.local import schemas as s

NAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"}

# (method, path, summary, request model, response model or None for text, status)
OPERATIONS: list[tuple[str, str, str, type[BaseModel] | None, type[BaseModel] | None, int]] = [
    ("get", "/status", "The device's identity and connection state", None, s.LocalStatus, 200),
    ("get", "/jobs", "Jobs and local apps with their services", None, s.JobList, 200),
    ("get", "/jobs/{job}", "One job with its services", None, s.LocalJob, 200),
    (
        "get",
        "/jobs/{job}/services/{service}/logs",
        "A service's output (tail, follow)",
        None,
        None,
        200,
    ),
    (
        "post",
        "/jobs/{job}/services/{service}/restart",
        "Restart a service",
        None,
        s.ActionDone,
        200,
    ),
    (
        "post",
        "/jobs/{job}/services/{service}/stop",
        "Stop a service and keep it stopped",
        None,
        s.ActionDone,
        200,
    ),
    (
        "post",
        "/jobs/{job}/services/{service}/start",
        "Start a stopped service",
        None,
        s.ActionDone,
        200,
    ),
    ("get", "/desired", "The local desired state (secrets sealed)", None, s.LocalDesired, 200),
    ("get", "/backlog", "Collected data waiting for the server", None, s.Backlog, 200),
    ("get", "/apps", "The owner's local apps", None, s.AppList, 200),
    ("post", "/apps", "Run or replace a local app", s.AppRun, s.LocalApp, 201),
    ("delete", "/apps/{name}", "Remove a local app", None, None, 200),
]


@functools.cache
def document() -> dict[str, Any]:
    models = {m for op in OPERATIONS for m in (op[3], op[4]) if m is not None} | {s.ErrorBody}
    _, defs = models_json_schema(
        [(m, "serialization") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, request, response, status in OPERATIONS:
        params = [
            {"name": name, "in": "path", "required": True, "schema": NAME}
            for name in ("job", "service", "name")
            if "{" + name + "}" in path
        ]
        if path.endswith("/logs"):
            params += [
                {"name": "tail", "in": "query", "schema": {"type": "integer"}},
                {"name": "follow", "in": "query", "schema": {"type": "boolean"}},
            ]
        content = (
            {"application/json": {"schema": {"$ref": f"#/components/schemas/{response.__name__}"}}}
            if response is not None
            else {"text/plain": {"schema": {"type": "string"}}}
        )
        op: dict[str, Any] = {
            "summary": summary,
            "parameters": params,
            "responses": {
                str(status): {"description": summary, "content": content},
                "default": {
                    "description": "an error, naming the field",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
                    },
                },
            },
        }
        if request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{request.__name__}"}
                    }
                },
            }
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "edgefleet agent local API", "version": __version__},
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {})},
    }
