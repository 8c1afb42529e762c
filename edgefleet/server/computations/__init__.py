"""Federated computations on the server: datasets devices report, requests for
aggregates, and the relay that runs the secure-aggregation rounds.

::

    POST /computations -> service.create: plan.check (pure: datasets, policy, parties,
        threshold) -> Computation row (the audit record) -> relay.launch
    relay.Relay: one orchestrator.Orchestrator task per running computation here;
        fed messages in (hub.on(FedRelay)) and out (hub.deliver), across replicas
        over the bus; dataset reports (hub.on(DatasetsReport)) -> datasets.ingest
    orchestrator: the fed.Aggregator through its four rounds, with per-round
        timeouts -> service.finish: result (the released aggregate) or error

- ``tables.py``   FedDataset (schema, rounded size, policy per device) and Computation
- ``schemas.py``  API models;  ``routes.py`` HTTP only;  ``datasets.py`` reports, listing
"""
