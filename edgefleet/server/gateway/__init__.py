"""The agents' gateway: enrollment, the WebSocket every agent holds, presence,
and reaching any device from any replica (see :mod:`hub`)."""
