"""Agent releases and over-the-air agent upgrades (issue 18).

    POST /agent-releases  (admin)  a wheel + its SHA-256 + version -> agent_releases
    GET  /agent-releases/{v}/wheel  devices fetch it with their own credential
    POST /devices/upgrade-agent     devices | selector, version, max_parallel
        -> agent_upgrades row -> rollout.py: batches of max_parallel devices,
           each sent the `upgrade-agent` command; a batch must be healthy
           (agent_version == V, online) before the next starts; a device that
           reports a rollback (or misses the deadline) fails the upgrade, and
           the devices not yet reached are left alone.

The device does the safe part itself (see :mod:`edgefleet.agent.upgrade`).
"""
