"""The replica's metrics, on a registry of its own (not prometheus_client's
global one: two apps in one process, as in tests, must not share counters).

Request metrics are labelled with the *route template*
(``/api/v1/devices/{device}``), never the raw path, and the method is folded
into a fixed set, so a client cannot grow the number of series. Fleet
numbers come from :class:`~edgefleet.server.metrics.fleet.FleetCounts`,
handed over at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edgefleet import __version__
from edgefleet.server.devices_link import LinkCounts
from edgefleet.server.metrics.fleet import FleetCounts

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"  # no route: 404s, app hosts, probes; one series for all
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


def method_label(method: str) -> str:
    return method if method in METHODS else "OTHER"


class _Fleet(Collector):
    """Yields the last fleet counts it was given (the scrape route sets them)."""

    def __init__(self) -> None:
        self.counts = FleetCounts()

    def collect(self) -> Iterator[Metric]:
        counts = self.counts
        devices = GaugeMetricFamily(
            "edgefleet_devices",
            "Devices by project and online state.",
            labels=["project", "online"],
        )
        ready = GaugeMetricFamily(
            "edgefleet_devices_ready",
            "Online devices whose runtime is healthy and that applied their desired state.",
            labels=["project"],
        )
        for project, d in sorted(counts.devices.items()):
            devices.add_metric([project, "true"], d.online)
            devices.add_metric([project, "false"], d.total - d.online)
            ready.add_metric([project], d.ready)
        jobs = GaugeMetricFamily("edgefleet_jobs", "Jobs by state.", labels=["state"])
        for state, n in sorted(counts.jobs.items()):
            jobs.add_metric([state], n)
        job_devices = GaugeMetricFamily(
            "edgefleet_job_devices", "Job assignments to devices by state.", labels=["state"]
        )
        for state, n in sorted(counts.job_devices.items()):
            job_devices.add_metric([state], n)
        records = CounterMetricFamily(
            "edgefleet_data_records_stored",
            "Data records stored, all jobs and devices (from the database; rate() = ingest rate).",
            value=counts.data_records,
        )
        alerts = GaugeMetricFamily(
            "edgefleet_alerts_firing", "Alerts firing now, by project.", labels=["project"]
        )
        for project, n in sorted(counts.alerts_firing.items()):
            alerts.add_metric([project], n)
        yield from (devices, ready, jobs, job_devices, records, alerts)


class _Hub(Collector):
    """Yields the hub's counters as last read (they live on the hub, which
    keeps them as plain ints on its hot path; the scrape reads them)."""

    def __init__(self) -> None:
        self.counts = LinkCounts()

    def collect(self) -> Iterator[Metric]:
        counts = self.counts
        yield GaugeMetricFamily(
            "edgefleet_agents_connected", "Agents connected to this replica.", value=counts.agents
        )
        yield CounterMetricFamily(
            "edgefleet_agent_frames",
            "Frames received from agents on this replica.",
            value=counts.frames,
        )
        yield CounterMetricFamily(
            "edgefleet_agent_frames_deferred",
            "Agent frames held for a later event-loop turn, so that API requests "
            "kept their place (a fan-out landing, a reconnect storm, a flooding agent).",
            value=counts.frames_deferred,
        )
        yield CounterMetricFamily(
            "edgefleet_gc_collections_paced",
            "Full garbage collections the hub started itself: when agents were calm, "
            "while they were still connecting, or past the ceiling of waiting objects.",
            value=counts.collections_paced,
        )
        yield CounterMetricFamily(
            "edgefleet_gc_thaws",
            "Times the frozen sessions were given back to the collector (sessions left, "
            "or the frozen heap grew): the next full collection walks the whole heap once.",
            value=counts.thaws,
        )
        yield CounterMetricFamily(
            "edgefleet_agent_connections_admitted",
            "Agent connections let in by this replica's admission rate.",
            value=counts.connections_admitted,
        )
        yield CounterMetricFamily(
            "edgefleet_agent_connections_refused",
            "Agent connections told to come back later (close 4503 with a retry-after): "
            "a reconnect storm, or a replica whose event loop lags.",
            value=counts.connections_refused,
        )


class ServerMetrics:
    """Everything ``GET /metrics`` shows for one replica."""

    def __init__(self, replica: str) -> None:
        # No *_created series: half the scrape, nothing lost (process-wide switch).
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_cpu_seconds_total
        PlatformCollector(registry=r)
        info = Gauge("edgefleet_server_info", "This replica.", ["version", "replica"], registry=r)
        info.labels(__version__, replica).set(1)
        self.requests = Counter(
            "edgefleet_http_requests",
            "HTTP requests answered, by method, route template and status class.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "edgefleet_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.websockets = Gauge(
            "edgefleet_websockets_open",
            "WebSockets open on this replica by route template (agents, exec sessions, logs).",
            ["route"],
            registry=r,
        )
        self.loop_lag = Gauge(
            "edgefleet_event_loop_lag_seconds",
            "How late the event loop woke the last sampling sleep, in seconds.",
            registry=r,
        )
        self.bus_messages = Counter(
            "edgefleet_bus_messages",
            "Messages through the bus on this replica: published, received, requested.",
            ["direction"],
            registry=r,
        )
        self.bus_errors = Counter(
            "edgefleet_bus_errors",
            "Bus calls that failed (no responders, timeouts, lost connection).",
            ["operation"],
            registry=r,
        )
        self.bus_subscriptions = Gauge(
            "edgefleet_bus_subscriptions", "Bus subscriptions open on this replica.", registry=r
        )
        self.fleet = _Fleet()
        r.register(self.fleet)
        self.hub = _Hub()
        r.register(self.hub)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method_label(method), route, status_class(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self, fleet: FleetCounts, hub: LinkCounts) -> bytes:
        self.fleet.counts = fleet
        self.hub.counts = hub
        return generate_latest(self.registry)
