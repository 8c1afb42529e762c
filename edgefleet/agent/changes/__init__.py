"""The change queue (ParaDrop's, made idempotent): pure planning and queueing
in :mod:`plan` and :mod:`queue`, I/O in :mod:`executor`."""
