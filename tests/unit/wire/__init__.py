"""Unit tests for edgefleet.wire, laid out like the package."""
