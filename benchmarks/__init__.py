"""Benchmarks (``make bench``): real servers, real agents (or the fleet
simulator, which runs the real agent code), real engines. Results are
appended to benchmarks/RESULTS.md with the date, the machine and the commit."""
