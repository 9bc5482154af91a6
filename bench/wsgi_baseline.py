"""The callback benchmark's baseline: the least a callback endpoint can do.

It reads the body and stores it in one row, with the same driver (psycopg 3 through
SQLAlchemy), the same engine options as the app's config (so the same pool), under the same
gunicorn settings. What PesaTab does beyond this (store the event, lock the payment, parse,
check, move the status, audit, commit twice) is what the ratio measures.
"""

import os
import tempfile

from flask import Flask, jsonify, request
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, create_engine, func

from app.config import load_config

metadata = MetaData()
bench_callback = Table(
    "bench_callback",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token", String(64), nullable=False),
    Column("raw_body", Text, nullable=False),
    Column("received_at", DateTime, nullable=False, server_default=func.now()),
)

_config = load_config(instance_path=tempfile.gettempdir())
engine = create_engine(_config["SQLALCHEMY_DATABASE_URI"], **_config["SQLALCHEMY_ENGINE_OPTIONS"])
app = Flask(__name__)
LIMIT = int(os.environ.get("CALLBACK_MAX_BYTES", "16384"))


@app.post("/hooks/stk/<token>")
def stk_callback(token: str):
    body = request.stream.read(LIMIT + 1)
    with engine.begin() as conn:
        conn.execute(
            bench_callback.insert().values(
                token=token[:64], raw_body=body.decode("utf-8", "replace")
            )
        )
    return jsonify(ResultCode=0, ResultDesc="Accepted")


@app.get("/_bench/hello")
def bench_hello():
    return "hello"
