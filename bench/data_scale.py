"""3. Data at scale: a year of payments for 100 bars (1,000,000 rows), and the pages managers
open on it: the payments list (first page, a deep keyset page, filters), the reconciliation
day, the CSV export of a month (streamed; memory must stay flat).

Seeding is INSERT ... SELECT FROM generate_series in PostgreSQL (foreign-key triggers off for the
load, as pg_restore does; the data is consistent by construction): tabs (2,000 a bar, a line
each worth what was paid on it, closed recording what they still owed), payments, and the
callback event each settled payment had; then VACUUM ANALYZE.
One bar in ten payments is "the big bar" (100,000 rows, 270 a day); the rest share the other
900,000. The baseline is the same page for a small bar in the same database (200 payments), so
the ratio says what a year of history costs a page; every query a page runs is EXPLAINed.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg
import requests
from sqlalchemy import event, text

from bench import loadgen, seed, stack
from bench.stats import ratio, target, timing

SCALES = {
    "full": {
        "payments": 1_000_000,
        "bars": 100,
        "tabs_per_bar": 2000,
        "small_payments": 200,
        "repeats": 25,
        "warm": 3,
    },
    "smoke": {
        "payments": 5_000,
        "bars": 5,
        "tabs_per_bar": 20,
        "small_payments": 50,
        "repeats": 2,
        "warm": 1,
    },
}
PAGE_TARGET_MS, DAY_TARGET_MS = 50, 200
# The index each filtered page (and the reconciliation's breaks) is built to read: a plan that
# reads another one (say the bar's whole (bar_id, created_at) range) is slow however it looks.
BREAK_INDEXES = ("ix_payment_bar_id_may_break_created_at", "ix_tab_bar_id_may_owe_closed_at")
OWN_INDEXES = {
    "payments: one phone": ("ix_payment_bar_id_phone_created_at",),
    "payments: flagged": ("ix_payment_bar_id_flagged_created_at",),
    "reconciliation: a past day": BREAK_INDEXES,
    "reconciliation: today": BREAK_INDEXES,
}
USER_AGENT = "pesatab-bench/1"  # the load generator's; Flask-Login's session identifier uses it
BIG_TABLES = ("payment", "tab", "tab_line", "callback_event", "audit_event", "statement_line")

PAYMENTS_SQL = """
WITH src AS (
    SELECT g,
           CASE WHEN %(nbars)s::int = 1 OR g %% 10 = 0 THEN 0 \
ELSE 1 + (g %% (%(nbars)s::int - 1)) END AS idx,
           random() AS rs, random() AS rt, random() AS rk, random() AS rc, random() AS ra,
           random() AS rd, random() AS rf, random() AS rx
    FROM generate_series(%(first)s::int, %(last)s::int) AS g
), p AS (
    SELECT src.*, (%(bar_ids)s::int[])[idx + 1] AS bar_id,
           %(now)s::timestamp - rd * interval '365 days' AS created,
           CASE WHEN rs < 0.75 THEN 'paid' WHEN rs < 0.85 THEN 'cancelled' \
WHEN rs < 0.92 THEN 'failed'
                WHEN rs < 0.96 THEN 'expired' WHEN rs < 0.98 THEN 'rejected' \
ELSE 'failed' END AS status,
           CASE WHEN rs < 0.75 THEN '0' WHEN rs < 0.85 THEN '1032' WHEN rs < 0.92 THEN '1'
                WHEN rs < 0.96 THEN '1037' WHEN rs < 0.98 THEN NULL ELSE '2001' END AS code,
           50 + floor(ra * 4950)::int AS amt,
           '25472' || lpad((idx * 20000 + floor(rc * 2000))::int::text, 7, '0') AS msisdn
    FROM src
)
INSERT INTO payment (
    bar_id, tab_id, purpose, phone, amount, account_reference, description, status, callback_token,
    merchant_request_id, checkout_request_id, result_code, message, error_kind, receipt, \
paid_amount,
    paid_phone, transaction_time, credential_revision, flagged, flag_reason, query_attempts,
    created_at, sent_at, settled_at, updated_at)
SELECT bar_id,
       CASE WHEN rt < 0.7 THEN %(tab0)s::int + idx \
+ %(nbars)s::int * floor(rk * %(tabs_per_bar)s::int)::int END,
       CASE WHEN rt < 0.7 THEN 'tab' ELSE 'api' END,
       msisdn, amt, 'TAB' || (g %% 100000), 'Bar tab', status, md5('bench-cb-' || g),
       'bench-' || g, 'ws_CO_bench' || g, code,
       CASE status WHEN 'paid' THEN 'Paid.' WHEN 'rejected' THEN 'M-Pesa refused the request.'
                   ELSE 'M-Pesa declined the payment.' END,
       CASE WHEN status = 'rejected' THEN 'invalid' END,
       CASE WHEN status = 'paid' THEN 'S' || lpad(upper(to_hex(g)), 9, '0') END,
       CASE WHEN status = 'paid' THEN amt END,
       CASE WHEN status = 'paid' THEN msisdn END,
       CASE WHEN status = 'paid' THEN created + interval '20 seconds' END,
       1, rf < 0.001, CASE WHEN rf < 0.001 THEN 'late_success' END, 0,
       created,
       CASE WHEN status <> 'rejected' THEN created + interval '1 second' END,
       created + (5 + rx * 60) * interval '1 second',
       created + (5 + rx * 60) * interval '1 second'
FROM p
"""

TABS_SQL = """
INSERT INTO tab (bar_id, label, status, opened_at, closed_at, outstanding_at_close)
SELECT (%(bar_ids)s::int[])[(i - 1) %% %(nbars)s::int + 1], 'Table ' || (i %% 40 + 1), 'settled',
       %(now)s::timestamp - random() * interval '365 days', %(now)s::timestamp, 0
FROM generate_series(1, %(count)s::int) AS i
RETURNING id
"""

# One line per tab worth what was paid on it, so only one tab in 200 is "closed with money
# outstanding" (a break), as in a bar that mostly balances. A bar's tabs are every nbars-th id,
# so the one in 200 is counted along the bar's own tabs (tab_id / nbars), not by id.
TAB_LINES_SQL = """
INSERT INTO tab_line (tab_id, description, quantity, unit_price, created_at)
SELECT tab_id, 'Drinks', 1, \
sum(amount) + CASE WHEN tab_id / %(nbars)s::int %% 200 = 0 THEN 100 ELSE 0 END,
       min(created_at)
FROM payment WHERE tab_id IS NOT NULL AND status = 'paid' AND bar_id = ANY(%(bar_ids)s::int[])
GROUP BY tab_id
"""

# What closing each tab records, as close_tab and void_tab do: its lines less its paid payments
# (0 for every tab but the ones above; TABS_SQL writes 0).
TAB_OUTSTANDING_SQL = """
UPDATE tab SET outstanding_at_close = owed.balance
FROM (
    SELECT tab_id, sum(kes) AS balance FROM (
        SELECT tab_line.tab_id, tab_line.quantity * tab_line.unit_price AS kes
        FROM tab_line JOIN tab ON tab.id = tab_line.tab_id \
WHERE tab.bar_id = ANY(%(bar_ids)s::int[])
        UNION ALL
        SELECT tab_id, -amount FROM payment
        WHERE tab_id IS NOT NULL AND status = 'paid' AND bar_id = ANY(%(bar_ids)s::int[])
    ) AS money
    GROUP BY tab_id
) AS owed
WHERE tab.id = owed.tab_id AND tab.status <> 'open' AND owed.balance <> 0
"""

# The callback each settled payment had, stored as the hook stores it (one in 2,000 kept as a
# mismatch: a break for the reconciliation page).
CALLBACK_EVENTS_SQL = """
INSERT INTO callback_event (token, payment_id, bar_id, raw_body, body_size, truncated, \
source_address,
                            known_source, headers, disposition, attempts, received_at, processed_at)
SELECT callback_token, id, bar_id, body, length(body), false, '196.201.214.200', true,
       '{"Content-Type": "application/json"}', \
CASE WHEN id %% 2000 = 0 THEN 'mismatch' ELSE 'applied' END,
       1, settled_at, settled_at
FROM (
    SELECT p.*, format(
        '{"Body":{"stkCallback":{"MerchantRequestID":"%%s","CheckoutRequestID":"%%s",\
"ResultCode":%%s,'
        '"ResultDesc":"%%s"%%s}}}', merchant_request_id, checkout_request_id, result_code, message,
        CASE WHEN status = 'paid' THEN \
format(',"CallbackMetadata":{"Item":[{"Name":"Amount","Value":%%s},'
            '{"Name":"MpesaReceiptNumber","Value":"%%s"},{"Name":"Balance"},\
{"Name":"TransactionDate",'
            '"Value":20260101120000},{"Name":"PhoneNumber","Value":%%s}]}', \
amount, receipt, phone) ELSE '' END
    ) AS body
    FROM payment p
    WHERE status IN ('paid', 'failed', 'cancelled', 'expired') AND result_code IS NOT NULL
      AND bar_id = ANY(%(bar_ids)s::int[])
) AS settled
"""


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _drop_indexes(conn, table: str) -> list[str]:
    """Drop `table`'s unique constraints and secondary indexes; returns the SQL that rebuilds
    exactly them (loading first and indexing after is what pg_restore does, and ~2x faster)."""
    rebuild = []
    for name, definition in conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'u'",
        (table,),
    ).fetchall():
        conn.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        rebuild.append(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    for name, definition in conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        (table, table),
    ).fetchall():
        conn.execute(f'DROP INDEX "{name}"')
        rebuild.append(definition)
    return rebuild


def _bulk(
    url: str, bar_ids: list[int], first: int, count: int, tabs_per_bar: int, *, reindex: bool = True
) -> dict:
    """Tabs, payments, tab lines and callback events for `bar_ids`, straight in SQL; seconds
    each."""
    from app.models import utcnow

    now, steps = utcnow(), {}
    clock = time.monotonic()

    def step(name: str) -> None:
        nonlocal clock
        steps[name] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()

    with psycopg.connect(_dsn(url)) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK triggers during the load
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("SELECT setseed(%s)", (0.42 if first == 1 else 0.24,))
        rebuild = (
            [sql for table in ("payment", "callback_event") for sql in _drop_indexes(conn, table)]
            if reindex
            else []
        )
        args = {"bar_ids": bar_ids, "nbars": len(bar_ids), "now": now}
        tab_ids = [
            r[0] for r in conn.execute(TABS_SQL, {**args, "count": tabs_per_bar * len(bar_ids)})
        ]
        step("tabs")
        conn.execute(
            PAYMENTS_SQL,
            {
                **args,
                "first": first,
                "last": first + count - 1,
                "tab0": min(tab_ids),
                "tabs_per_bar": tabs_per_bar,
            },
        )
        step("payments")
        conn.execute(TAB_LINES_SQL, args)
        conn.execute(TAB_OUTSTANDING_SQL, args)
        step("tab_lines")
        conn.execute(CALLBACK_EVENTS_SQL, args)
        step("callback_events")
        for sql in rebuild:
            conn.execute(sql)
        step("indexes")
        conn.commit()
    return steps


def _analyze(url: str) -> None:
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        for table in ("payment", "tab", "tab_line", "callback_event"):
            conn.execute(f"VACUUM ANALYZE {table}")


def seed_all(url: str, env: dict, s: dict) -> dict:
    """The big bar, the other bars, the small baseline bar; owners for the two we measure."""
    started = time.monotonic()
    with stack.app_context(env):
        bar_ids = seed.bars(s["bars"], "Scale Bar")
        small = seed.bars(1, "Small Bar")[0]
    steps = _bulk(url, bar_ids, 1, s["payments"], s["tabs_per_bar"])
    _bulk(url, [small], s["payments"] + 1, s["small_payments"], 20, reindex=False)
    clock = time.monotonic()
    _analyze(url)
    steps["vacuum_analyze"] = round(time.monotonic() - clock, 1)
    with stack.app_context(env):
        ((big_owner, _),) = seed.users([bar_ids[0]], "owner")
        ((small_owner, _),) = seed.users([small], "owner")
    return {
        "big_bar": bar_ids[0],
        "small_bar": small,
        "owners": {"big": big_owner, "small": small_owner},
        "seconds": round(time.monotonic() - started, 1),
        "steps": steps,
    }


def _pages(bar_id: int) -> dict[str, str]:
    """The URLs a manager opens, for `bar_id` (cursors and dates from its own data)."""
    from app.extensions import db
    from app.models import Bar
    from app.payments.listing import Cursor
    from app.reconciliation.periods import local_today

    bar = db.session.get(Bar, bar_id)

    def cursor(where: str = "") -> str:
        """Half-way down the bar's matching rows: about six months back."""
        count = db.session.scalar(
            text(f"SELECT count(*) FROM payment WHERE bar_id = :b {where}"), {"b": bar_id}
        )
        row = db.session.execute(
            text(
                f"SELECT created_at, id FROM payment WHERE bar_id = :b {where} "
                "ORDER BY created_at DESC, id DESC OFFSET :k LIMIT 1"
            ),
            {"b": bar_id, "k": count // 2},
        ).first()
        return Cursor(row.created_at, row.id).encode()

    phone = db.session.scalar(
        text("SELECT phone FROM payment WHERE bar_id = :b ORDER BY created_at DESC LIMIT 1"),
        {"b": bar_id},
    )
    today = local_today(bar.timezone, db.session.scalar(text("SELECT now() AT TIME ZONE 'UTC'")))
    month_start = (today.replace(day=1) - timedelta(days=100)).replace(
        day=1
    )  # a whole month, ~4 back
    month_end = (month_start + timedelta(days=31)).replace(day=1) - timedelta(days=1)
    month = f"from={month_start.isoformat()}&to={month_end.isoformat()}"
    failed_cursor = cursor("AND status = 'failed'")
    past_day = (today - timedelta(days=10)).isoformat()
    return {
        "payments: first page": "/payments/",
        "payments: deep keyset page": f"/payments/?before={cursor()}",
        "payments: status=failed": "/payments/?status=failed",
        "payments: status=failed, deep": f"/payments/?status=failed&before={failed_cursor}",
        "payments: a month (from/to)": f"/payments/?{month}",
        "payments: one phone": f"/payments/?phone={phone}",
        "payments: flagged": "/payments/?status=flagged",
        "reconciliation: a past day": f"/reconciliation/?day={past_day}",
        "reconciliation: today": "/reconciliation/",
        "csv: a month": f"/payments/export.csv?{month}",
        "csv: the whole year": "/payments/export.csv",
    }


def _timed(port: int, path: str, cookie: str, repeats: int) -> dict:
    """`repeats` requests one after another; the first answer's size and table rows too."""
    request = loadgen.request_bytes("GET", path, port, headers={"Cookie": cookie})
    outcome = loadgen.run(
        loadgen.Job(
            port, [request], connections=1, total=repeats, time_limit=120, timeout=60, keep_bodies=1
        )
    )
    answered = [lat for s, lat in zip(outcome.statuses, outcome.latency, strict=True) if s == 200]
    body = outcome.bodies[0] if outcome.bodies else b""
    return {
        **timing(answered),
        "failed": outcome.failed,
        "bytes": len(body),
        "table_rows": body.count(b"<tr"),
    }


class _RssSampler:
    """Peak resident memory of the gunicorn workers while something runs."""

    def __init__(self, pids: list[int]):
        self.pids, self.peak, self.start = pids, {}, {}
        self._stop = threading.Event()

    def __enter__(self) -> _RssSampler:
        self.start = {p: stack.rss_kb(p) for p in self.pids}
        self.peak = dict(self.start)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            for p in self.pids:
                self.peak[p] = max(self.peak[p], stack.rss_kb(p))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return round(max(self.peak[p] - self.start[p] for p in self.pids) / 1024, 1)

    @property
    def peak_mib(self) -> float:
        return round(max(self.peak.values()) / 1024, 1)


def _export(server: stack.Gunicorn, path: str, cookie: str) -> dict:
    """Stream one CSV export, sampling the workers' memory; time to first byte and in all."""
    with _RssSampler(server.worker_pids()) as rss:
        started = time.monotonic()
        first, size, lines = None, 0, 0
        with requests.get(
            server.url + path, headers={"Cookie": cookie}, stream=True, timeout=300
        ) as answer:
            status = answer.status_code
            for chunk in answer.iter_content(chunk_size=65536):
                first = first or time.monotonic()
                size += len(chunk)
                lines += chunk.count(b"\n")
        total = time.monotonic() - started
    return {
        "status": status,
        "rows": max(0, lines - 1),
        "mib": round(size / 2**20, 1),
        "seconds": round(total, 2),
        "first_byte_ms": round(((first or started) - started) * 1000, 1),
        "rows_per_s": round(max(0, lines - 1) / total) if total else None,
        "worker_rss_growth_mib": rss.growth_mib,
        "worker_rss_peak_mib": rss.peak_mib,
    }


# -- query plans ---------------------------------------------------------------------------------


def _walk(node: dict, found: dict) -> None:
    relation, index = node.get("Relation Name"), node.get("Index Name")
    if index:
        found["indexes"].add(index)
    if node.get("Node Type") == "Seq Scan" and relation:
        found["seq_scans"].add(relation)
    for child in node.get("Plans", []):
        _walk(child, found)


def plans(app, cookie: str, path: str) -> dict:
    """`cookie` is `name=value`; the test client keeps cookies in its own jar."""
    """EXPLAIN (ANALYZE, BUFFERS) every distinct SELECT the page runs, served in-process."""
    from app.extensions import db

    seen: dict[str, object] = {}

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and statement not in seen:
            seen[statement] = parameters

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with app.app_context():
            client = app.test_client()
            name, _, value = cookie.partition("=")
            client.set_cookie(name, value, domain="localhost")
            answer = client.get(
                path, base_url="https://localhost", headers={"User-Agent": USER_AGENT}
            )
            answer.get_data()
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    found = {"indexes": set(), "seq_scans": set()}
    explained = []
    with app.app_context(), db.engine.connect() as conn:
        for statement, parameters in seen.items():
            raw = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters
            )
            plan = raw.scalar()[0]
            _walk(plan["Plan"], found)
            textual = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            explained.append(
                {
                    "sql": " ".join(statement.split())[:400],
                    "execution_ms": round(plan["Execution Time"], 2),
                    "plan": [r[0] for r in textual],
                }
            )
    big_seq = sorted(t for t in found["seq_scans"] if t in BIG_TABLES)
    return {
        "status": answer.status_code,
        "indexes": sorted(found["indexes"]),
        "seq_scans": sorted(found["seq_scans"]),
        "seq_scans_on_big_tables": big_seq,
        "queries": explained,
    }


# -- the run -------------------------------------------------------------------------------------


def run(scale: str = "full") -> dict:
    s = SCALES[scale]
    with stack.database("scale") as url:
        env = stack.app_env(url)
        stack.migrate(env)
        seeded = seed_all(url, env, s)
        with stack.app_context(env) as app:
            cookies = {
                k: seed.cookie_header(app, c)
                for k, c in zip(
                    ("big", "small"),
                    seed.session_cookies(
                        app, [seeded["owners"]["big"], seeded["owners"]["small"]]
                    ).values(),
                    strict=True,
                )
            }
            urls = {"big": _pages(seeded["big_bar"]), "small": _pages(seeded["small_bar"])}
            explained = {
                name: plans(app, cookies["big"], path)
                for name, path in urls["big"].items()
                if not name.startswith("csv: the whole")
            }
            rows = db_rows(url)
        with stack.Gunicorn("bench.wsgi_app:app", env) as server:
            pages = _measure_pages(server, urls, cookies, s["repeats"], s["warm"])
            exports = {
                name: _export(server, path, cookies["big"])
                for name, path in urls["big"].items()
                if name.startswith("csv:")
            }
    return _figures(s, seeded, rows, pages, exports, explained)


def db_rows(url: str) -> dict:
    with psycopg.connect(_dsn(url)) as conn:
        payments, bars = conn.execute(
            "SELECT count(*), count(DISTINCT bar_id) FROM payment"
        ).fetchone()
        days = conn.execute("SELECT count(DISTINCT created_at::date) FROM payment").fetchone()[0]
        size = conn.execute("SELECT pg_total_relation_size('payment')").fetchone()[0]
    return {
        "payments": payments,
        "bars": bars,
        "days": days,
        "payment_table_mib": round(size / 2**20),
    }


def _measure_pages(
    server: stack.Gunicorn, urls: dict, cookies: dict, repeats: int, warm: int
) -> dict:
    names = [n for n in urls["big"] if not n.startswith("csv:")]
    for name in names:  # warm: templates compiled, both workers, index pages in cache
        for who in ("big", "small"):
            _timed(server.port, urls[who][name], cookies[who], warm)
    return {
        name: {
            "big": _timed(server.port, urls["big"][name], cookies["big"], repeats),
            "small": _timed(server.port, urls["small"][name], cookies["small"], repeats),
        }
        for name in names
    }


def _figures(s, seeded, rows, pages, exports, explained) -> dict:
    targets = []
    for name, both in pages.items():
        big, small = both["big"], both["small"]
        goal_ms = DAY_TARGET_MS if name.startswith("reconciliation") else PAGE_TARGET_MS
        plan = explained.get(name, {})
        note = f"p99 {big['p99_ms']} ms; indexes: {', '.join(plan.get('indexes', [])) or '-'}"
        if plan.get("seq_scans_on_big_tables"):
            note += f"; SEQ SCAN on {', '.join(plan['seq_scans_on_big_tables'])}"
        targets.append(
            target(
                f"{name} (median)",
                big["p50_ms"],
                "ms",
                f"< {goal_ms} ms",
                big["failed"] == 0 and (big["p50_ms"] or 1e9) < goal_ms,
                baseline=small["p50_ms"],
                ratio_value=ratio(big["p50_ms"], small["p50_ms"]),
                note=note,
            )
        )
    month, year = exports["csv: a month"], exports["csv: the whole year"]
    flat = year["worker_rss_growth_mib"] <= max(
        2 * month["worker_rss_growth_mib"], month["worker_rss_growth_mib"] + 8
    )
    ok = month["status"] == 200 and year["status"] == 200
    targets.append(
        target(
            "csv export: worker memory growth, a month",
            month["worker_rss_growth_mib"],
            "MiB",
            "flat",
            ok and flat,
            note=f"{month['rows']:,} rows, {month['mib']} MiB in "
            f"{month['seconds']} s, first byte {month['first_byte_ms']} ms",
        )
    )
    targets.append(
        target(
            "csv export: worker memory growth, the year",
            year["worker_rss_growth_mib"],
            "MiB",
            "flat (<= month x2 or +8 MiB)",
            ok and flat,
            baseline=month["worker_rss_growth_mib"],
            note=f"{year['rows']:,} rows, {year['mib']} MiB in {year['seconds']} s",
        )
    )
    uses_indexes = all(not p.get("seq_scans_on_big_tables") for p in explained.values())
    scanned = sorted(
        {
            f"{t} ({name})"
            for name, p in explained.items()
            for t in p.get("seq_scans_on_big_tables", [])
        }
    )
    targets.append(
        target(
            "query plans use indexes (no seq scan on a big table)",
            uses_indexes,
            "",
            "yes",
            uses_indexes,
            note="seq scans: " + "; ".join(scanned) if scanned else None,
        )
    )
    missing = sorted(
        f"{index} ({name})"
        for name, wanted in OWN_INDEXES.items()
        for index in wanted
        if index not in explained.get(name, {}).get("indexes", [])
    )
    own = not missing
    targets.append(
        target(
            "phone, flagged and breaks queries read their own index",
            own,
            "",
            "yes",
            own,
            note="not read: " + "; ".join(missing) if missing else None,
        )
    )
    return {
        "settings": s,
        "seeded": seeded,
        "rows": rows,
        "pages": pages,
        "exports": exports,
        "plans": explained,
        "targets": targets,
    }
