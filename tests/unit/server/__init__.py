"""Unit tests for edgefleet.server, laid out like the package."""
