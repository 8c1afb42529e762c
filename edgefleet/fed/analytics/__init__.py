"""Federated analytics beyond one column, on top of secure aggregation: the
protocol adds fixed-length vectors; this package chooses each device's vector
for a :class:`~edgefleet.fed.messages.Task` and reads the statistic from the sum.

- :mod:`.query`   filters (``where``) and how a cell compares; parsed conditions
- :mod:`.layout`  the vector: one block per group (indicator, then moments,
  counts or bins), its length, one device's vector from its rows, sensitivity
- :mod:`.noise`   differential privacy: each device's share of Laplace noise
- :mod:`.decode`  the released :class:`~.decode.Result` (means, variances,
  covariance, least squares, quantiles, suppressed groups, epsilon spent)

Pure and without I/O, imported by the server, the agent and the wire protocol.
"""
