"""Collected data on the device: workloads hand records and files to the agent,
which keeps them on disk until the server has them.

    endpoint.py   what workloads may POST, validation, answers
    context.py    what a workload may read about its device and job (GET context)
    http.py       its TCP listeners (the HTTP loop is agent/http_server.py)
    buffer.py     the durable SQLite buffer (seqs, idempotency, quota, eviction)
    service.py    the part: listeners, group commit, URLs and the env hook
    uploader.py   batches and files to the server, backlog reports
    networks.py   job networks' gateways (where containers reach the agent)
"""
