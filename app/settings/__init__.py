"""The settings area: its domain modules and its routes (blueprint `settings` in routes.py)."""
