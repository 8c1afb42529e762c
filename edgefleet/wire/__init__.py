"""The agent protocol, imported by both the server and the agent.

- :mod:`messages`  typed control messages (JSON text frames)
- :mod:`status`    job and service states as the agent reports them
- :mod:`workload`  what the server asks a device to run
- :mod:`mux`       many flow-controlled streams over one connection (binary frames)
- :mod:`link`      one connection: a reader, a prioritized writer, the mux
"""
