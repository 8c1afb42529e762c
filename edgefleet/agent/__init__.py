"""The device daemon (``edgefleet agent``).

Data flow: :mod:`connection` keeps one outbound WebSocket to the server and
hands :class:`~edgefleet.wire.messages.DesiredState` to :mod:`changes`, which
diffs it against what the runtime actually runs and executes one change at a
time through a :mod:`runtimes` implementation. :mod:`supervisor` watches the
workloads and reports status back up the same connection. :mod:`tunnels`
serves exec, logs and proxy streams the server opens; :mod:`databuffer`
stores workloads' records on disk until the server acknowledges them.
"""
