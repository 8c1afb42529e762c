"""The app proxy: a browser or script reaches a service port of a job on a
device behind NAT, through the agent's own connection (a ``tcp`` stream).
HTTP is spoken over the stream with h11 (:mod:`http`), WebSockets with
wsproto (:mod:`websocket`); :mod:`routes` authorizes and routes by path,
:mod:`hosts` by host name (``--apps-domain``)."""
