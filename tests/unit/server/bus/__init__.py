"""Unit tests for edgefleet.server.bus, laid out like the package."""
