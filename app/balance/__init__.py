"""The M-Pesa balance on the owner's dashboard: what the bar's shortcode holds, asked of M-Pesa
(Account Balance, answered asynchronously) on request and at most BALANCE_LIMIT_PER_BAR (see
app/balance/service.py)."""
