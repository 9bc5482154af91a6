"""Giving a paid payment's money back (Daraja's Reversal API): an owner or manager asks with a
reason; M-Pesa's result, applied once, gives the tab its balance back. See service.py."""
