"""htmx, read one way everywhere: is this request a fragment request, and answer it so caches
and the browser's history keep the fragment and the page apart.

A route that answers both (a fragment to htmx, the whole page to a browser) calls
`wants_fragment()` to choose and `render(fragment, page, **context)` (or `vary(response)`) to
answer: the response always says `Vary: HX-Request`, so no cache, proxy or browser ever hands the
fragment to a full page load or the page to an htmx swap. On a history-cache miss htmx asks for
the URL again with `HX-History-Restore-Request` and needs the whole page: that is not a fragment
request.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, make_response, render_template, request

VARY = "HX-Request"


def is_htmx() -> bool:
    """The request came from htmx (a swap, a poll, a boosted link, or a history restore)."""
    return request.headers.get("HX-Request") == "true"


def wants_fragment() -> bool:
    """htmx is asking for a piece of a page, not restoring a whole page from history."""
    return is_htmx() and request.headers.get("HX-History-Restore-Request") != "true"


def vary(response: Response) -> Response:
    """Mark a response whose body depends on HX-Request."""
    response.vary.add(VARY)
    return response


def render(fragment: str, page: str, status: int = 200, **context) -> Response:
    """The fragment template to htmx, the page template to everyone else, with `Vary` set."""
    template = fragment if wants_fragment() else page
    return vary(make_response(render_template(template, **context), status))


def page_path() -> str | None:
    """The path of the page an htmx request comes from (`HX-Current-URL`), None if not said."""
    current = request.headers.get("HX-Current-URL")
    return urlsplit(current).path if current else None
