"""Two SQL pieces the report needs that are the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, case, literal, null
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement


def bucket_of(column, windows: list[tuple[datetime, datetime]]) -> ColumnElement:
    """A CASE giving the index of the window [lo, hi) holding `column`, NULL in a gap between
    windows (sorted, not overlapping). It is a binary search, so a row makes about log2(n)
    comparisons, not n: a 92-day range stays fast on SQLite. Rows before the first window or
    after the last are for the WHERE to leave out."""
    edges, labels = [windows[0][0]], []
    for n, (lo, hi) in enumerate(windows):
        if lo > edges[-1]:
            edges.append(lo)
            labels.append(None)
        edges.append(hi)
        labels.append(n)
    return _search(column, edges, labels, 0, len(labels))


def _search(column, edges: list[datetime], labels: list[int | None], first: int, stop: int):
    if stop - first == 1:
        return null() if labels[first] is None else literal(labels[first])
    middle = (first + stop) // 2
    return case(
        (column < edges[middle], _search(column, edges, labels, first, middle)),
        else_=_search(column, edges, labels, middle, stop),
    )


class seconds_between(FunctionElement):  # lower case: it reads as the SQL function it is
    """Seconds from the first timestamp to the second, on SQLite and PostgreSQL."""

    type = Float()
    name = "seconds_between"
    inherit_cache = True


@compiles(seconds_between)
def _seconds_postgresql(element, compiler, **kw):
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element, compiler, **kw):
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"
