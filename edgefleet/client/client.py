"""The client: every call of the REST API as a method, grouped by noun.

Each method maps to one endpoint and answers the JSON the server sent, typed
by a ``TypedDict`` of :mod:`edgefleet.client.models` (a plain dict at run time,
so ``client.create_job(...)["id"]`` works and mypy checks the key). List methods
follow the ``next`` cursor for you unless you ask for one page.

Every call raises :class:`~edgefleet.client.errors.ConnectionFailed` when the
server cannot be reached, and for a 4xx/5xx answer the matching
:class:`~edgefleet.client.errors.ApiError` (Unauthorized, Forbidden, NotFound,
Conflict, Invalid, ServerError), whose ``message`` and ``field`` are the
server's; a method's docstring names the ones it is known for.

Where to read: ``transport.py`` (how a request becomes JSON or an error), then
the noun you need: ``access.py`` (users, tokens, projects, keys), ``config.py``
(registries, secrets, variables), ``alerts.py``, ``devices.py``, ``sharing.py``
(loans, reservations, requirements), ``apps.py``, ``jobs.py``, ``data.py``
(datasets, computations, records, files), ``agents.py``, ``instances.py``.
"""

from __future__ import annotations

from edgefleet.client.access import AccessCalls
from edgefleet.client.agents import AgentCalls
from edgefleet.client.alerts import AlertCalls
from edgefleet.client.apps import AppCalls
from edgefleet.client.config import ConfigCalls
from edgefleet.client.data import DataCalls
from edgefleet.client.devices import DeviceCalls
from edgefleet.client.instances import InstanceCalls
from edgefleet.client.jobs import JobCalls
from edgefleet.client.sharing import SharingCalls
from edgefleet.client.transport import JSON

__all__ = ["JSON", "Client"]


class Client(
    AccessCalls,
    ConfigCalls,
    AlertCalls,
    DeviceCalls,
    SharingCalls,
    AppCalls,
    JobCalls,
    DataCalls,
    AgentCalls,
    InstanceCalls,
):
    """``Client(server, token, timeout=60.0, verify=True)``: one authenticated
    session to ``server``; use it in a ``with`` block or call ``close()``."""
