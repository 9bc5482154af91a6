"""The JSON push API for point-of-sale systems: /api/v1/...

Signed in with a bar's API key (Bearer), not a session, so CSRF does not apply.
"""
