"""Where Safaricom calls us (routes.py): `POST /hooks/stk/<token>`."""
