"""Unit tests for edgefleet.server.jobs, laid out like the package."""
