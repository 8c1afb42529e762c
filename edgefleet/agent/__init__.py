"""The device daemon (``edgefleet agent``).

Data flow: :mod:`~edgefleet.agent.connection` keeps one outbound WebSocket to
the server and hands :class:`~edgefleet.wire.messages.DesiredState` to
:mod:`~edgefleet.agent.jobs`, which diffs it against what the runtimes actually
run (:mod:`~edgefleet.agent.changes`: the pure planner, the change queue, the
executor) and executes one change at a time through a
:mod:`~edgefleet.agent.runtimes` implementation (docker, process, sim); its
supervisor watches the workloads and reports status back up the same
connection.

The core:

    main.py        the process: logging, signals, exit codes, restarts
    agent.py       Agent: enrollment, runtimes, Jobs, the connection, then its parts
    connection.py  the WebSocket, heartbeats, backoff; enroll.py the first start
    websocket/     the RFC 6455 client under it (asyncio streams, h11 handshake)
    footprint.py   what the process keeps from loading (run first by the lean entry)
    jobs.py        desired state in, workloads out, status back
    commands.py    one-shot commands from the server (ping, exec, reboot, ...)
    state.py       the state dir (identity, desired state); settings.py the flags

Everything else is a *part*, built from an
:class:`~edgefleet.agent.part.AgentContext` (never the Agent itself) and taking
part through the phases it implements (:mod:`~edgefleet.agent.part`). The
parts, in start order with the condition each runs under, are the table
``PARTS`` in :mod:`~edgefleet.agent.parts`:

    tunnels.py, saves.py, volumes.py   streams the server opens (exec, logs, tcp,
                                       volume archives, instance saves)
    data/          the local data endpoint for workloads and its durable buffer
    isolation.py   the firewall table keeping jobs' networks apart
    workload_files.py, builds.py       hooks of the executor (secrets on a tmpfs,
                                       images built on the device)
    upgrade/       over-the-air upgrades of the agent itself
    telemetry/     device health samples and workloads' log lines
    local/         the owner's local API and local apps
    fed.py, datasets/  the owner's datasets and federated computations
    schedule/      periodic jobs from the device's own clock

``simulator.py`` runs many real agents in one process with the ``sim`` runtime
and a :class:`~edgefleet.agent.parts.Profile` leaving out the heavy parts.
"""
