"""Collected data on the device: workloads hand records and files to the agent,
which keeps them on disk until the server has them.

    endpoint.py   what workloads may POST, validation, answers
    context.py    what a workload may read about its device and job (GET context)
    http.py       its TCP listeners
    connection.py their lean HTTP/1.1 reader: POSTed records served on the
                  connection, the rest handed to agent/http_server.py (h11)
    buffer.py     the durable SQLite buffer (seqs, idempotency, quota, eviction)
    commit.py     the group commit: one journal append + fdatasync for all waiting
    service.py    the part: listeners, URLs and the env hook
    uploader.py   batches and files to the server, backlog reports
    networks.py   job networks' gateways (where containers reach the agent)
"""
