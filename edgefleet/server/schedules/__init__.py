"""Periodic jobs on the server side.

    POST /jobs {"schedule": {...}} --> jobs.service.create --> plan.check (422s)
                                                         --> JobSchedule row
    desired_for(...) --> plan.attach: one-shot services move from the
                         assignment's spec to ``periodic`` (the agent fires them)
    agent --ScheduleRuns--> ingest.RunIngest --INSERT, keep the newest N--> ScheduleRunsAck
    GET /jobs/{id}/runs --> runs.page            (newest first, cursor paged)
    GET /jobs/{id}      --> runs.decorate        (last run, next fire per device)

The device decides when to run, from its own clock and desired state; the
server only validates, delivers and keeps what devices report.
"""
