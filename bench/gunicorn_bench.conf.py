"""The benchmarks' gunicorn settings: production's gunicorn.conf.py exactly, except that the
access log is off (warnings only, so the figures do not include formatting a log line)."""

import runpy
from pathlib import Path

_production = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
globals().update({name: value for name, value in _production.items() if not name.startswith("__")})
accesslog = None
