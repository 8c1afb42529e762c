"""Reservations: devices booked by a project for a time window.

Data flow: ``POST /reservations`` -> :mod:`.service` gathers the candidate
devices and their existing bookings, loans and presence -> :mod:`.booking`
(pure) picks devices and lists conflicts -> stored, or answered as a dry run
or a 409. Jobs are then gated per device by :mod:`.gate` (inside assign), and
:mod:`.clock` re-applies affected jobs when a window opens or closes.
"""
