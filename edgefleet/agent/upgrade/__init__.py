"""Over-the-air upgrades of the agent itself (issue 18).

The new version is installed *beside* the running one and the switch is a
symlink plus an exec, so the old version stays on disk until the new one has
proven itself; workloads are never touched (containers belong to the engine,
process workloads are adopted by pid after the exec, as on any restart)::

    server: upgrade-agent {version, sha256, url, size, deadline}
      |
      v
    install.py   download with the device credential -> verify SHA-256
                 -> versions/<V>/  (venv + the wheel, dependencies shared)
      |
      v
    launch.py    pending.json, start watchdog.py, current -> versions/<V>,
                 exec versions/<V>/bin/python -m edgefleet agent <same argv>
      |
      +-- new agent connects, gets its welcome -> part.py marks it healthy
      |                                          (report: healthy, version V)
      '-- it exits, or is not healthy by the deadline
              -> watchdog.py (old code, separate process): current back,
                 report rolled_back + why, start the old agent again
                 (under systemd: kill the new one and let systemd restart)

State under ``<state-dir>/upgrade/``: ``pending.json`` while a switch is on
trial, ``report.json`` with the last outcome (sent in the device's facts).
"""
