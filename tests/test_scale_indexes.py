"""The queries a year of payments would make slow read their own indexes (benchmark 3).

A partial index is used only when PostgreSQL can prove from the query that every row it wants
is in the index. psycopg prepares a query once it has run 5 times, and PostgreSQL may then plan
it once for any parameters (a generic plan), which sees no bound values: so the proof must hold
from the query's text alone. These tests plan each query that way, on PostgreSQL.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from psycopg.sql import Literal
from sqlalchemy import event, insert, text

from app.extensions import db
from app.models import Payment, Tab, utcnow
from app.models.mpesa import MAY_BREAK_SQL
from app.models.tabs import MAY_OWE_SQL
from app.payments import listing
from app.payments.states import IN_FLIGHT
from app.reconciliation import breaks

PHONE = "254711000001"


def test_the_break_index_holds_every_payment_in_flight():
    in_flight = ", ".join(f"'{s}'" for s in IN_FLIGHT)
    for dialect, predicate in MAY_BREAK_SQL.items():
        assert f"status IN ({in_flight})" in predicate, dialect
    assert "'open'" in MAY_OWE_SQL


@pytest.fixture
def postgresql(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("query plans are PostgreSQL's")


@pytest.fixture
def year(postgresql, factory, bar, outsider):
    """A bar with thousands of ordinary payments and tabs, a few of each kind that matter."""
    now = utcnow()
    rows = []
    for b in (bar, outsider.bar):
        for n in range(3000):
            at = now - timedelta(minutes=5 * n + 60)
            rows.append(
                {
                    "bar_id": b.id,
                    "purpose": "tab",
                    "phone": f"2547{n % 300:08d}",
                    "amount": 100 + n,
                    "account_reference": f"TAB{n}",
                    "description": "Bar tab",
                    "status": "paid",
                    "callback_token": secrets.token_hex(16),
                    "receipt": f"QS{b.id}{n:07d}",
                    "flagged": n % 1000 == 7,
                    "flag_reason": "late_success" if n % 1000 == 7 else None,
                    "query_attempts": 0,
                    "created_at": at,
                    "sent_at": at,
                    "settled_at": at,
                    "updated_at": at,
                }
            )
    db.session.execute(insert(Payment), rows)
    db.session.execute(
        insert(Tab),
        [
            {
                "bar_id": b.id,
                "label": f"T{n}",
                "status": "settled",
                "opened_at": now,
                "closed_at": now,
                "outstanding_at_close": 0,
            }
            for b in (bar, outsider.bar)
            for n in range(2000)
        ],
    )
    db.session.add(
        Tab(
            bar_id=bar.id,
            label="Owing",
            status="void",
            opened_at=now,
            closed_at=now,
            outstanding_at_close=300,
        )
    )
    factory.payment(bar, status="sent", amount=450, phone=PHONE)
    db.session.execute(
        text(
            "INSERT INTO tab_line (tab_id, description, quantity, unit_price, created_at) "
            "SELECT id, 'Drinks', 1, 100, opened_at FROM tab WHERE status = 'settled'"
        )
    )
    db.session.commit()
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE payment, tab, tab_line"))
    return bar


def statements(run) -> list[tuple[str, dict]]:
    seen = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    return seen


def generic_plan(statement: str, parameters: dict) -> str:
    """EXPLAIN of `statement` as a prepared statement planned for any parameters."""
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    prepared = re.sub(r"%\((\w+)\)s", number, statement)
    with db.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        values = ", ".join(Literal(parameters[n]).as_string(raw) for n in names)
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        # A pooled connection serves test after test: drop any plan an earlier one prepared.
        conn.exec_driver_sql("DEALLOCATE ALL")
        conn.exec_driver_sql(f"PREPARE scale_plan AS {prepared}")
        lines = conn.exec_driver_sql(f"EXPLAIN EXECUTE scale_plan({values})").scalars().all()
        conn.rollback()
    return "\n".join(lines)


def plan_of(run, table: str) -> str:
    found = [generic_plan(s, p) for s, p in statements(run) if f"FROM {table}" in s]
    assert len(found) == 1, found
    return found[0]


def test_the_payments_list_by_phone_reads_its_index(year):
    plan = plan_of(
        lambda: listing.fetch_page(year, listing.Filters(phone=PHONE), None, 50), "payment"
    )
    assert "ix_payment_bar_id_phone_created_at" in plan and "Seq Scan" not in plan, plan


def test_the_payments_list_of_flagged_ones_reads_its_index(year):
    plan = plan_of(
        lambda: listing.fetch_page(year, listing.Filters(status="flagged"), None, 50), "payment"
    )
    assert "ix_payment_bar_id_flagged_created_at" in plan and "Seq Scan" not in plan, plan


def test_the_payment_breaks_read_their_index(year):
    plan = plan_of(lambda: breaks._payment_breaks(year, utcnow()), "payment")
    assert "ix_payment_bar_id_may_break_created_at" in plan and "Seq Scan" not in plan, plan


def test_the_tab_breaks_read_their_index(year):
    plan = plan_of(lambda: breaks._tab_breaks(year), "tab")
    assert "ix_tab_bar_id_may_owe_closed_at" in plan and "Seq Scan" not in plan, plan
