"""The staff area: its domain modules and its routes (blueprint `staff` in routes.py)."""
