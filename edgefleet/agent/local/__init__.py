"""The agent's local API: the device's owner sees and steers it with no server.

http.py      the Unix socket (0660, root:GROUP) for agent/http_server.py
routes.py    paths -> LocalApi calls, names checked
service.py   the part: reads, actions, hooks into Jobs, reports to the server
holds.py     services the owner stopped: kept stopped until started or a new revision
journal.py   actions waiting for the server
apps.py      the owner's own apps (job ids local-NAME), beside the fleet's
openapi.py   the document at /openapi.json
"""
