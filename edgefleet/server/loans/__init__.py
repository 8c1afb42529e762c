"""Devices lent across projects.

A device's owning project lends it to another project (or to everyone,
``"*"``) with limits: the device-policy rights guest jobs get, memory and
process caps, and the share of time the guest may hold it in reservations.
A guest sees only a narrow view of the device (:mod:`.view`) and runs only its
own jobs there; revoking the loan stops those jobs at once (desired state
recomputed for the device).
"""
