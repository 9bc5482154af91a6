"""Importing the M-Pesa business statement and matching it with payments."""
