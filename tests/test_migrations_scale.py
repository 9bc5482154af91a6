"""Revision 0006 (indexes for a year of payments, each tab's outstanding at close): the backfill,
and partial indexes whose predicates are the models' (the drift test does not compare them)."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import MetaData, Table, insert, inspect, text

from app import create_app
from app.extensions import db
from app.models import Payment, Tab
from tests.test_migrations import empty_database

NOW = datetime(2024, 5, 10, 9, 0)
SCALE_INDEXES = {
    "payment": (
        "ix_payment_bar_id_phone_created_at",
        "ix_payment_bar_id_flagged_created_at",
        "ix_payment_bar_id_may_break_created_at",
    ),
    "tab": ("ix_tab_bar_id_may_owe_closed_at",),
}


@pytest.fixture
def app_at_0005(tmp_path, test_config):
    with empty_database(tmp_path) as url:
        app = create_app({**test_config, "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            upgrade(revision="0005")
            yield app
            db.session.remove()
            db.engine.dispose()


def _insert(table_name: str, /, **values) -> int:
    """A row in the table as revision 0005 has it (not as the models have it now)."""
    table = Table(table_name, MetaData(), autoload_with=db.engine)
    return db.session.execute(insert(table).values(**values).returning(table.c.id)).scalar()


def _tab(bar_id: int, status: str, lines: list[int], payments: list[tuple[str, int]]) -> int:
    tab_id = _insert(
        "tab",
        bar_id=bar_id,
        label=f"Tab {status}",
        status=status,
        opened_at=NOW,
        closed_at=None if status == "open" else NOW,
    )
    for price in lines:
        _insert(
            "tab_line",
            tab_id=tab_id,
            description="Tusker",
            quantity=1,
            unit_price=price,
            created_at=NOW,
        )
    for n, (state, amount) in enumerate(payments):
        _insert(
            "payment",
            bar_id=bar_id,
            tab_id=tab_id,
            purpose="tab",
            phone="254708374149",
            amount=amount,
            account_reference=f"TAB{tab_id}",
            description="Bar tab",
            status=state,
            callback_token=f"tok-{tab_id}-{n}",
            flagged=False,
            query_attempts=0,
            created_at=NOW,
            updated_at=NOW,
        )
    return tab_id


def test_upgrading_records_what_each_closed_tab_owes_now(app_at_0005):
    bar_id = _insert(
        "bar",
        name="Kwa Mama",
        slug="kwa-mama",
        timezone="Africa/Nairobi",
        mpesa_enabled=True,
        setup_state="live",
        created_at=NOW,
    )
    other_bar = _insert(
        "bar",
        name="Other",
        slug="other",
        timezone="Africa/Nairobi",
        mpesa_enabled=True,
        setup_state="live",
        created_at=NOW,
    )
    tabs = {
        "settled": _tab(bar_id, "settled", [300, 600], [("paid", 500), ("paid", 400)]),
        "void owing": _tab(
            bar_id, "void", [300, 600], [("paid", 500), ("failed", 400), ("sent", 100)]
        ),
        "void unpaid": _tab(other_bar, "void", [250], []),
        "void no lines": _tab(bar_id, "void", [], []),
        "void overpaid": _tab(bar_id, "void", [250], [("paid", 400)]),
        "open": _tab(bar_id, "open", [300], [("paid", 100)]),
    }
    db.session.commit()

    upgrade(revision="0006_scale_indexes")

    found = dict(db.session.execute(text("SELECT id, outstanding_at_close FROM tab")).all())
    assert {name: found[tab_id] for name, tab_id in tabs.items()} == {
        "settled": 0,
        "void owing": 400,
        "void unpaid": 250,
        "void no lines": 0,
        "void overpaid": -150,
        "open": None,
    }
    indexes = {
        table: {i["name"] for i in inspect(db.engine).get_indexes(table)} for table in SCALE_INDEXES
    }
    for table, names in SCALE_INDEXES.items():
        assert set(names) <= indexes[table]

    db.session.remove()
    downgrade(revision="0005")
    assert "outstanding_at_close" not in {c["name"] for c in inspect(db.engine).get_columns("tab")}
    assert not set(SCALE_INDEXES["payment"]) & {
        i["name"] for i in inspect(db.engine).get_indexes("payment")
    }


def _definition(conn, name: str) -> str:
    """The index as the database holds it, without its name, in one line."""
    if conn.dialect.name == "postgresql":
        found = conn.execute(text("SELECT pg_get_indexdef(to_regclass(:n))"), {"n": name}).scalar()
    else:
        found = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"), {"n": name}
        ).scalar()
    assert found, name
    return re.sub(r"\s+", " ", found.replace(name, "<index>")).strip()


@pytest.mark.parametrize(
    ("model", "name"),
    [(m, n) for m, t in ((Payment, "payment"), (Tab, "tab")) for n in SCALE_INDEXES[t]],
)
def test_the_migrated_indexes_are_the_models_word_for_word(app_at_0005, model, name):
    """Columns, order and partial predicate: PostgreSQL uses a partial index only when a query
    implies its predicate, so one that drifted from the models' would be silently unused."""
    upgrade(revision="0006_scale_indexes")
    index = next(i for i in model.__table__.indexes if i.name == name)
    with db.engine.begin() as conn:
        migrated = _definition(conn, name)
        conn.execute(text(f"DROP INDEX {name}"))
        index.create(conn)
        assert _definition(conn, name) == migrated
