"""PesaTab as production serves it (`wsgi:app`), plus one hello-world route: the baseline
"the same app, doing nothing" that the polling benchmark compares the status fragment with."""

from wsgi import app


@app.get("/_bench/hello")
def bench_hello():
    return "hello"
