"""Shared fixtures: each test file picks what it needs from tests/support."""
