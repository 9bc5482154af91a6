"""The tabs area: its domain modules and its routes (blueprint `tabs` in routes.py)."""
