"""Fixtures for serve mode (owned by the API work)."""
