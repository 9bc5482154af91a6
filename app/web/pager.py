"""Keyset paging, one way for every list: newest first, no OFFSET.

A list orders its query on a key that only grows (an id, or a (created_at, id) pair) and asks
for one row more than a page. The extra row says there is an older page; the last shown row's
key is where it starts. Page 40 costs what page 1 costs, and a row written while someone pages
neither repeats a row nor hides one. The links go in templates/_pager.html.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from flask import url_for
from sqlalchemy import Row, Select

from app.extensions import db

K = TypeVar("K")


@dataclass
class Page(Generic[K]):
    rows: list[Row]
    older: K | None  # the key the next (older) page starts below; None on the last page


def fetch(query: Select, limit: int, key_of: Callable[[Row], K]) -> Page[K]:
    """One page of `query` (ordered newest first, already below the cursor): at most `limit`
    rows, and the key of the last one when there are more."""
    rows = list(db.session.execute(query.limit(limit + 1)).all())
    if len(rows) <= limit:
        return Page(rows, None)
    return Page(rows[:limit], key_of(rows[limit - 1]))


def links(endpoint: str, args: dict[str, str], *, paged: bool, older: str | None) -> dict:
    """The pager's two links, keeping the filters: Newest (once paged past the first page) and
    Older (while there is an older page; `older` is its cursor as the query string carries it)."""
    return {
        "newest_url": url_for(endpoint, **args) if paged else None,
        "older_url": url_for(endpoint, **args, before=older) if older else None,
    }
