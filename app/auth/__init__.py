"""The auth area: its domain modules and its routes (blueprint `auth` in routes.py)."""
