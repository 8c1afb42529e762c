"""Reaching devices: exec, logs, device actions and port-forward, all over the
agent's own connection (streams through the hub)."""
