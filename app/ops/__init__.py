"""The operators' pages: every bar's state, alerts and the global M-Pesa switch."""
