"""The web portal, served by ``edgefleet server`` at ``/`` from the same process.

Server-rendered pages (Jinja2) made live with htmx and one server-sent event
stream; no Node build. How a request flows::

    browser --GET /devices--> devices.py --service calls--> HTML page (templates/)
            <-- SSE /portal/live: "devices changed" (live.py, from the event bus)
            --GET /portal/fragments/devices--> the table body again (htmx swap)
            --POST form + csrf--> handler --service / API handler call--> 303 to a page

Pages, one module each: ``auth`` (sign in/out), ``dashboard``, ``devices``,
``apps``, ``jobs``, ``admin`` (provisioning keys, API tokens, projects),
``audit`` (the event log for administrators and project owners).
``web`` holds what they share: the signed-in viewer, CSRF-checked forms,
rendering, and the route class that turns errors into pages. Handlers call
the server's services in-process, or the API's own handler functions where
those carry the side effects (events, pushes to agents), so the portal and
the API cannot drift apart. Logs, agent logs and the exec console are read
by the browser straight from the API with the session cookie.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from edgefleet.server.portal.assets import STATIC


def install(app: FastAPI) -> None:
    """Add the portal's routes and static files to the server's app."""
    from edgefleet.server.portal import (
        admin,
        apps,
        audit,
        auth,
        dashboard,
        devices,
        jobs,
        live,
        oidc,
        reservations,
    )
    from edgefleet.server.portal import config as project_config

    for module in (
        auth,
        oidc,
        dashboard,
        reservations,  # before devices: its /devices/{id}/loans forms
        devices,
        apps,
        jobs,
        admin,
        audit,
        live,
        project_config,
    ):
        app.include_router(module.router)
    from edgefleet.server.portal import computations  # federated analytics pages

    app.include_router(computations.router)
    from edgefleet.server.portal import instances  # personal instances (issue 21)

    app.include_router(instances.router)
    from edgefleet.server.portal import agent_upgrades  # agent upgrades over the air (issue 18)

    app.include_router(agent_upgrades.router)
    from edgefleet.server.portal import fleet_health  # device telemetry (issue 18)

    app.include_router(fleet_health.router)
    from edgefleet.server.portal import alerts, data_page  # alerts, the data page (issue 18)

    app.include_router(alerts.router)
    app.include_router(data_page.router)
    app.mount("/portal/static", StaticFiles(directory=STATIC), name="portal-static")
