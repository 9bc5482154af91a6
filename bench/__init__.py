"""PesaTab's benchmarks: `python -m bench [names...] [--smoke]` (or `make bench`).

Each benchmark is a module with `run(scale="full"|"smoke") -> dict`: it starts what it needs
(its own PostgreSQL database, gunicorn with the app, the Daraja simulator), sends a bounded
load from a separate process to 127.0.0.1 only, and returns its figures and targets. See
bench/README.md for what each measures and the latest results.
"""

BENCHMARKS = {
    "callback_ingest": "bench.callback_ingest",
    "status_polling": "bench.status_polling",
    "data_scale": "bench.data_scale",
    "token_economy": "bench.token_economy",
    "statement_import": "bench.statement_import",
}
