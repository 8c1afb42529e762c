"""Unit tests for edgefleet.server.scheduler, laid out like the package."""
