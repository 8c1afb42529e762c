"""Alert rules per project, evaluated on one replica, delivered to webhooks.

How data flows::

    runner (scheduler lease, every --alert-interval s)
      --> observe.py   devices offline, failed job devices, latest disk %, data backlog
      --> evaluate.py  pure: rules + observations + firing alerts -> transitions
      --> service.py   alerts rows (firing/resolved) + one delivery row per webhook and message
    runner (same lease) --> delivery.py: due deliveries POSTed, signed (HMAC-SHA-256),
                            retried with backoff and jitter, then given up

A message is a row before it is a request, so a replica that dies mid-way
leaves nothing lost and nothing sent twice by design (the row is marked done
once the receiver answered 2xx).
"""
