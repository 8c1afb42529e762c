"""Import every table module so ``Base.metadata`` is complete (Alembic, tests)."""

from edgefleet.server.agent_releases import tables as _agent_releases  # noqa: F401
from edgefleet.server.alerts import tables as _alerts  # noqa: F401
from edgefleet.server.applications import tables as _applications  # noqa: F401
from edgefleet.server.auth import oidc_tables as _oidc  # noqa: F401
from edgefleet.server.auth import tables as _auth  # noqa: F401
from edgefleet.server.computations import tables as _computations  # noqa: F401
from edgefleet.server.data import tables as _data  # noqa: F401
from edgefleet.server.db.base import Base
from edgefleet.server.devices import tables as _devices  # noqa: F401
from edgefleet.server.events import tables as _events  # noqa: F401
from edgefleet.server.instances import tables as _instances  # noqa: F401
from edgefleet.server.jobs import tables as _jobs  # noqa: F401
from edgefleet.server.keys import tables as _keys  # noqa: F401
from edgefleet.server.loans import tables as _loans  # noqa: F401
from edgefleet.server.projects import tables as _projects  # noqa: F401
from edgefleet.server.readiness import tables as _readiness  # noqa: F401
from edgefleet.server.registries import tables as _registries  # noqa: F401
from edgefleet.server.remote import tables as _remote  # noqa: F401
from edgefleet.server.reservations import tables as _reservations  # noqa: F401
from edgefleet.server.rollouts import tables as _rollouts  # noqa: F401
from edgefleet.server.scheduler import tables as _scheduler  # noqa: F401
from edgefleet.server.schedules import tables as _schedules  # noqa: F401
from edgefleet.server.secrets import tables as _secrets  # noqa: F401
from edgefleet.server.telemetry import tables as _telemetry  # noqa: F401
from edgefleet.server.variables import tables as _variables  # noqa: F401
from edgefleet.server.volumes import tables as _volumes  # noqa: F401

metadata = Base.metadata
