"""``GET /metrics``: this replica's numbers in the Prometheus text format.

How data flows::

    request --> HttpMetrics (ASGI, outermost) --> app --> route template, status, latency
    lifespan --> LoopLag task (sleeps, measures how late it wakes)
    scrape --> routes.metrics (admin token or --metrics-token)
               --> fleet.FleetCache (GROUP BY queries, reused --metrics-cache-seconds)
               --> registry.ServerMetrics.render() (prometheus_client exposition)

Every replica answers for its own process (requests, agents connected here,
loop lag, process_*) plus the fleet gauges it reads from the shared database,
so any replica's scrape shows the same fleet.
"""
