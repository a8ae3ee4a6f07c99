"""The transform over real public tables that the dev dependencies ship (no network)."""
