"""The agent's local API: the device's owner sees and steers it with no server.

http.py      asyncio + h11 on a Unix socket (0660, root:GROUP)
routes.py    paths -> LocalApi calls, names checked
service.py   the part: reads, actions, hooks into Jobs, reports to the server
holds.py     services the owner stopped: kept stopped until started or a new revision
journal.py   actions waiting for the server
apps.py      the owner's own apps (job ids local-NAME), beside the fleet's
openapi.py   the document at /openapi.json
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgefleet.agent.agent import Agent
    from edgefleet.agent.local.service import LocalApi


def attach(agent: Agent) -> LocalApi:
    """Add the local API to ``agent`` (after its Jobs exist, before they start):
    its apps join the assignments, its holds the change queue."""
    from edgefleet.agent.local.service import LocalApi
    from edgefleet.wire.messages import LocalActionsAck

    assert agent.jobs is not None
    api = LocalApi(agent)
    agent.jobs.local_assignments = api.apps.assignments
    agent.jobs.held = api.held
    agent.jobs.status_hook = api.status_hook
    agent.facts_hooks.append(api.facts_hook)
    agent.parts.append(api)
    agent.on_connected.append(api.on_connected)
    agent.message_handlers[LocalActionsAck] = api.on_ack
    return api
