"""Calls of the testbed: lending devices to other projects, booking them for a
time window, and the peripherals a project declares its devices must have."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgefleet.client.models import Loan, Requirement, Reservation, ReservationDryRun
from edgefleet.client.transport import JSON, Transport, compact


class SharingCalls(Transport):
    def lend_device(self, device: str, project: str, **limits: Any) -> Loan:
        """Lend a device to ``project`` (``"*"``: every project). ``limits``: ``rights``
        (the device-policy subset guests get), ``expose_labels``, ``time_share``,
        ``share_window_hours``. Forbidden unless you operate the device's project."""
        body = {"project": project, **limits}
        return self._send(Loan, "POST", f"/devices/{device}/loans", body)

    def loans(self, device: str) -> list[Loan]:
        """A device's loans (a guest sees only its own)."""
        return self._all(Loan, f"/devices/{device}/loans")

    def revoke_loan(self, device: str, project: str) -> None:
        """Revoke a loan: the guest's workloads on the device stop, "loan revoked"."""
        self.delete(f"/devices/{device}/loans/{project}")

    def reserve(
        self, project: str, *, start: str, end: str, **booking: Any
    ) -> Reservation | ReservationDryRun:
        """Book devices: ``devices`` or ``selector``, optional ``count``, ``spread``,
        ``exclusive`` (default true), ``dry_run``. A dry run answers ``{"devices",
        "conflicts", "skipped"}`` (:class:`~edgefleet.client.models.ReservationDryRun`);
        a conflicting booking raises Conflict (409) whose ``body`` holds the
        ``conflicts``."""
        body: JSON = {"project": project, "start": start, "end": end}
        body.update(compact(**booking))
        made: Reservation | ReservationDryRun = self.post("/reservations", body)
        return made

    def reservations(self, **filters: Any) -> list[Reservation]:
        """Reservations you can see; filters: ``project``, ``device``, ``from``, ``to``."""
        return self._all(Reservation, "/reservations", **filters)

    def reservation(self, reservation: str) -> Reservation:
        """One reservation; NotFound if you cannot see it."""
        return self._get(Reservation, f"/reservations/{reservation}")

    def change_reservation(
        self, reservation: str, *, start: str | None = None, end: str | None = None
    ) -> Reservation:
        """Extend or shorten (conflicts are checked again: 409 if the new window collides)."""
        body = compact(start=start, end=end)
        return self._send(Reservation, "PATCH", f"/reservations/{reservation}", body)

    def cancel_reservation(self, reservation: str) -> None:
        """Cancel a booking; the jobs that ran only inside it end with it."""
        self.delete(f"/reservations/{reservation}")

    def device_requirements(self, project: str) -> list[Requirement]:
        """The peripherals a project declares its devices must have, per selector."""
        page = self._get(JSON, f"/projects/{project}/device-requirements")
        return list(page["items"])

    def set_device_requirements(
        self, project: str, items: Sequence[Mapping[str, Any]]
    ) -> list[Requirement]:
        """Replace them: ``[{"selector": "type=cam", "peripherals": ["camera"]}]``.
        Invalid for a selector that does not parse."""
        path = f"/projects/{project}/device-requirements"
        return list(self._send(JSON, "PUT", path, {"items": list(items)})["items"])
