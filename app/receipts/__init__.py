"""Receipts: a paid tab's receipt to print (80 mm roll or A4) and a revocable link that shows it
to the customer without signing in (`content`, `links`, `share`, `details`; the pages in
routes.py)."""
