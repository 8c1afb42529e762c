"""Calls about devices: listing and labelling them, the event log, and reaching
them (exec, logs, owner actions, health metrics)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from edgefleet.client.models import Device, Event, ExecResult, MetricPoint
from edgefleet.client.transport import JSON, Transport, compact


class DeviceCalls(Transport):
    def devices(
        self,
        *,
        selector: str | None = None,
        online: bool | None = None,
        project: str | None = None,
        limit: int | None = None,
    ) -> list[Device]:
        """Devices you can see (lent ones too), filtered by a label ``selector``,
        ``online`` and ``project``. Invalid for a selector that does not parse."""
        params: dict[str, Any] = {"selector": selector, "project": project}
        if online is not None:
            params["online"] = "true" if online else "false"
        return self._all(Device, "/devices", limit, **params)

    def device(self, ref: str) -> Device:
        """One device by name or id; NotFound if you cannot see it."""
        return self._get(Device, f"/devices/{ref}")

    def update_device(
        self,
        ref: str,
        *,
        name: str | None = None,
        labels: dict[str, str | None] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Device:
        """Rename a device or change its labels (a ``None`` value removes a label)
        and metadata. Conflict if the name is taken; Forbidden for a guest."""
        body = compact(name=name, labels=labels, metadata=metadata)
        return self._send(Device, "PATCH", f"/devices/{ref}", body)

    def delete_device(self, ref: str) -> None:
        """Forget a device; its agent must enroll again. NotFound if unknown."""
        self.delete(f"/devices/{ref}")

    def events(self, **filters: Any) -> list[Event]:
        """The event log, newest first; filters as ``GET /events`` takes them
        (``project``, ``device``, ``job``, ``kind``, ``limit``, …)."""
        limit = filters.pop("limit", None)
        return self._all(Event, "/events", limit, **filters)

    def exec(
        self,
        device: str,
        command: list[str],
        *,
        timeout: float = 30,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run a command on a device (not in a workload); returns exit_code/stdout/stderr.
        Forbidden unless the device's policy and your role allow it; Conflict when
        the device is offline."""
        body = {"command": command, "timeout": timeout, "env": env or {}}
        path = f"/devices/{device}/exec"
        return self._send(ExecResult, "POST", path, body, timeout=timeout + 30)

    def workload_exec(
        self, job: str, device: str, service: str, command: list[str], *, timeout: float = 30
    ) -> ExecResult:
        """Run a command inside ``service`` of ``job``'s workload on ``device``;
        errors as :meth:`exec`'s."""
        body = {"device": device, "service": service, "command": command, "timeout": timeout}
        return self._send(ExecResult, "POST", f"/jobs/{job}/exec", body, timeout=timeout + 30)

    def logs(
        self,
        job: str,
        *,
        device: str | None = None,
        service: str | None = None,
        tail: int | None = None,
        since: str | None = None,
        follow: bool = False,
        format: str = "text",
    ) -> Iterator[str]:
        """A job's workload logs, line by line (``format`` ``text`` or ``json``);
        with ``follow`` the stream stays open for new lines."""
        return self.stream_lines(
            f"/jobs/{job}/logs",
            device=device,
            service=service,
            tail=tail,
            since=since,
            follow="true" if follow else None,
            format=format,
        )

    def agent_logs(self, device: str, *, tail: int = 200, follow: bool = False) -> Iterator[str]:
        """The agent's own log on ``device``, line by line (``follow`` keeps it open)."""
        return self.stream_lines(
            f"/devices/{device}/logs", tail=tail, follow="true" if follow else None
        )

    def device_action(
        self, device: str, action: str, *, confirm: bool = False, message: str = ""
    ) -> JSON:
        """Ask a device's agent for an owner action (e.g. ``reboot``); the ones that
        disturb workloads need ``confirm``. Forbidden when the policy refuses it."""
        body = {"confirm": confirm, "message": message}
        return self._send(JSON, "POST", f"/devices/{device}/actions/{action}", body)

    def device_metrics(
        self,
        device: str,
        *,
        since: str | None = None,
        until: str | None = None,
        step: str | None = None,
        limit: int | None = None,
    ) -> list[MetricPoint]:
        """A device's health over time (issue 18), oldest first: ``{"time", "cpu",
        "memory", "disk", "temperature", "net_rx", "net_tx", "uptime", ...}``.
        ``since``/``until``: ISO times or durations ago (``"1h"``; default the last
        24 hours); ``step``: average into buckets (``"15m"``); ``limit``: at most."""
        path = f"/devices/{device}/metrics"
        return self._all(MetricPoint, path, limit, since=since, until=until, step=step)
