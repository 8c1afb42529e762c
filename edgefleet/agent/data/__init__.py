"""Collected data on the device: workloads hand records and files to the agent,
which keeps them on disk until the server has them.

    endpoint.py   what workloads may POST, validation, answers
    context.py    what a workload may read about its device and job (GET context)
    http.py       the tiny asyncio + h11 server behind it
    buffer.py     the durable SQLite buffer (seqs, idempotency, quota, eviction)
    service.py    the part: listeners, group commit, URLs and the env hook
    uploader.py   batches and files to the server, backlog reports
    networks.py   job networks' gateways (where containers reach the agent)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgefleet.agent.agent import Agent
    from edgefleet.agent.data.service import DataService


def attach(agent: Agent) -> DataService:
    """Add the data part to ``agent`` (after its Jobs exist, before they start)."""
    from edgefleet.agent.data.service import DataService
    from edgefleet.wire.messages import DataAck

    assert agent.jobs is not None
    service = DataService(agent)
    agent.jobs.env_hooks.append(service.env)
    agent.parts.append(service)
    agent.message_handlers[DataAck] = service.uploader.on_ack
    return service
