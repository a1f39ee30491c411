"""Fixtures for real-browser tests (owned by the console work)."""
