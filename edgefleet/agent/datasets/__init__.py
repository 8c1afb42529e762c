"""Datasets a device's owner declares for federated computations.

Data stays where its owner keeps it; only aggregates leave, through the
secure-aggregation protocol of :mod:`edgefleet.fed`::

    edgefleet agent datasets add NAME FILE --state-dir DIR ...
        '-> registry.py: <state-dir>/datasets.json (name, source, path, policy)
    running agent (edgefleet.agent.fed.FederatedPart)
        |- catalog.py: re-reads the registry and the files when they change (mtime)
        |   '-> DatasetsReport to the server: schema + approximate size + policy, no value
        '- on fed.invite: policy.py checks project, op, party count, threshold
            '-> sources/*: read one column -> fed.stats.local_vector -> fed.Party

- :mod:`.registry`  the declarations (written by the CLI, read by the agent)
- :mod:`.sources`   one reader per format (CSV, JSON lines, Parquet, collected data)
- :mod:`.catalog`   what the agent reports, and the values it computes from
- :mod:`.policy`    the owner's rules, checked against each invitation (pure)
"""
