"""edgefleet: containerized applications on fleets of edge devices behind NAT.

Packages, by role (see docs/ARCHITECTURE.md):

- ``edgefleet.wire``   the agent protocol both sides import (messages, stream mux)
- ``edgefleet.spec``   the application spec (Compose subset), parsed and normalized
- ``edgefleet.server`` the controller: API, store, gateway, scheduler, proxy, portal
- ``edgefleet.agent``  the device daemon: connection, change queue, runtimes
- ``edgefleet.client`` the Python API client (the CLI uses only this)
- ``edgefleet.cli``    the ``edgefleet`` command
"""

__version__ = "0.1.0"
