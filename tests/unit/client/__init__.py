"""Unit tests for edgefleet.client, laid out like the package."""
