"""The local API's OpenAPI document takes its descriptions from
``wire.base.described``, not docstrings: an agent run with ``-OO`` (docstrings
stripped) serves the same document."""

from __future__ import annotations

import json
import subprocess
import sys

from edgefleet.agent.local.openapi import document

DUMP = (
    "import json; from edgefleet.agent.local.openapi import document; print(json.dumps(document()))"
)


def test_the_document_is_the_same_in_a_daemon_without_docstrings() -> None:
    answer = subprocess.run(
        [sys.executable, "-OO", "-c", DUMP], capture_output=True, text=True, check=True
    )
    stripped = json.loads(answer.stdout)
    assert stripped == json.loads(json.dumps(document()))
    schemas = stripped["components"]["schemas"]
    # Described models (agent/local/schemas.py and the wire models it shows) keep their text.
    assert schemas["LocalStatus"]["description"].startswith("``GET /status``")
    assert schemas["JobStatus"]["description"].startswith("How one job stands on one device.")
    assert schemas["LocalAction"]["description"] == "One thing the owner did through the local API."
    described = {name for name, schema in schemas.items() if "description" in schema}
    assert {"LocalJob", "LocalDesired", "Backlog", "AppRun"} <= described
