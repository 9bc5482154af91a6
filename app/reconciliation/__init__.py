"""Owners' and managers' reconciliation: the day view, breaks, exports."""
