"""Verify a code: a cashier types the code from a customer's M-Pesa SMS and PesaTab says in one
sentence whether the money is real: from the bar's own records first, else by asking M-Pesa
(Transaction Status, answered asynchronously; see app/verify/codes.py)."""
