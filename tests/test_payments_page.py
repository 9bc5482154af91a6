"""The payments page and its CSV: what managers and owners see, filter, page through and export."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, select

from app.extensions import db
from app.models import AuditEvent, Payment
from app.payments import csv_export
from app.web.querystring import BAD_CURSOR
from tests.conftest import login_as

BASE = datetime(2024, 5, 10, 9, 0)  # naive UTC, as stored


def listed_ids(response) -> list[int]:
    return [int(n) for n in re.findall(r'id="payment-row-(\d+)"', response.get_data(as_text=True))]


def older_link(response) -> str | None:
    found = re.search(r'href="([^"]+)"[^>]*rel="next"', response.get_data(as_text=True))
    return html.unescape(found.group(1)) if found else None


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


@pytest.fixture
def desk(app, owner):
    return login_as(app, owner)


# Who may look


def test_it_lists_the_bars_payments_newest_first(desk, factory, bar):
    old = factory.payment(bar, created_at=BASE)
    new = factory.payment(bar, created_at=BASE + timedelta(hours=2))
    middle = factory.payment(bar, created_at=BASE + timedelta(hours=1))
    response = desk.get("/payments/")
    assert response.status_code == 200
    assert listed_ids(response) == [new.id, middle.id, old.id]


def test_a_manager_sees_it_too(app, manager, factory, bar):
    payment = factory.payment(bar)
    assert listed_ids(login_as(app, manager).get("/payments/")) == [payment.id]


@pytest.mark.parametrize("path", ["/payments/", "/payments/export.csv"])
def test_a_cashier_is_refused(app, cashier, path):
    assert login_as(app, cashier).get(path).status_code == 403


@pytest.mark.parametrize("path", ["/payments/", "/payments/export.csv"])
def test_anonymous_visitors_are_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_an_outsider_never_sees_our_payments(app, outsider, factory, bar):
    ours = factory.payment(bar, phone="254708374149", message="=ours")
    tab = factory.tab(bar, "Ours")
    theirs = factory.payment(outsider.bar, phone="254708374149")
    client = login_as(app, outsider)
    assert listed_ids(client.get("/payments/")) == [theirs.id]
    assert listed_ids(client.get("/payments/?phone=0708374149")) == [theirs.id]
    assert listed_ids(client.get(f"/payments/?tab={tab.id}")) == []
    exported = client.get("/payments/export.csv")
    assert [row["id"] for row in csv_rows(exported)] == [str(theirs.id)]
    assert "=ours" not in exported.get_data(as_text=True)
    assert ours.id not in listed_ids(client.get("/payments/?status=sent"))


# What a row says


def test_a_row_shows_what_a_manager_needs(desk, factory, bar):
    tab = factory.tab(bar, "Table 7")
    payment = factory.payment(
        bar,
        status="paid",
        amount=1250,
        phone="254708374149",
        tab=tab,
        receipt="SGR7XYZ12A",
        message="Paid by the customer.",
        flagged=True,
        flag_reason="late_success",
        created_at=datetime(2024, 5, 1, 17, 5),
    )
    page = desk.get("/payments/").get_data(as_text=True)
    row = page[page.index(f'id="payment-row-{payment.id}"') :]
    row = row[: row.index("</tr>")]
    assert "01 May 2024, 20:05" in row  # Nairobi time
    assert "KES 1,250" in row and "2547****149" in row and "254708374149" not in page
    assert "badge-paid" in row and ">Paid<" in row and "SGR7XYZ12A" in row
    assert f'href="/tabs/{tab.id}">Table 7</a>' in row
    assert ">Tab<" in row and "Paid by the customer." in row and "Flagged: late success" in row
    assert f'href="/payments/{payment.id}/status"' in row


# Filters


def test_it_filters_by_one_status(desk, factory, bar):
    paid = factory.payment(bar, status="paid")
    factory.payment(bar, status="failed")
    assert listed_ids(desk.get("/payments/?status=paid")) == [paid.id]


def test_in_flight_groups_sending_waiting_and_checking(desk, factory, bar):
    flying = {factory.payment(bar, status=s).id for s in ("created", "sent", "unknown")}
    factory.payment(bar, status="paid")
    factory.payment(bar, status="expired")
    assert set(listed_ids(desk.get("/payments/?status=in_flight"))) == flying


def test_flagged_shows_only_flagged_payments(desk, factory, bar):
    flagged = factory.payment(bar, status="paid", flagged=True, flag_reason="late_success")
    factory.payment(bar, status="paid")
    assert listed_ids(desk.get("/payments/?status=flagged")) == [flagged.id]


def test_an_unknown_status_is_explained(desk, factory, bar):
    factory.payment(bar)
    response = desk.get("/payments/?status=bogus")
    assert response.status_code == 400
    assert b"Choose a status from the list." in response.data and listed_ids(response) == []


def test_dates_are_whole_days_in_nairobi(desk, factory, bar):
    # 22:30 UTC on the 1st is 01:30 on the 2nd in Nairobi (UTC+3).
    late_night = factory.payment(bar, created_at=datetime(2024, 5, 1, 22, 30))
    last_minute_of_1st = factory.payment(bar, created_at=datetime(2024, 5, 1, 20, 59, 59))
    first_minute_of_3rd = factory.payment(bar, created_at=datetime(2024, 5, 2, 21, 0))
    assert listed_ids(desk.get("/payments/?from=2024-05-02&to=2024-05-02")) == [late_night.id]
    assert listed_ids(desk.get("/payments/?to=2024-05-01")) == [last_minute_of_1st.id]
    assert listed_ids(desk.get("/payments/?from=2024-05-03")) == [first_minute_of_3rd.id]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2024-13-01", "Enter dates like 2024-05-31"),
        ("to=yesterday", "Enter dates like 2024-05-31"),
        ("to=9999-12-31", "Enter dates like 2024-05-31"),
        ("from=2024-05-03&to=2024-05-01", "is after the"),
    ],
)
def test_bad_dates_are_explained(desk, factory, bar, query, message):
    factory.payment(bar)
    response = desk.get(f"/payments/?{query}")
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_the_phone_filter_takes_a_number_as_people_type_it(desk, factory, bar):
    mine = factory.payment(bar, phone="254708374149")
    factory.payment(bar, phone="254712345678")
    assert listed_ids(desk.get("/payments/?phone=0708 374 149")) == [mine.id]
    assert listed_ids(desk.get("/payments/?phone=%2B254708374149")) == [mine.id]


def test_a_bad_phone_is_explained_not_a_crash(desk, factory, bar):
    factory.payment(bar)
    response = desk.get("/payments/?phone=0708")
    assert response.status_code == 400
    assert "That number is too short" in response.get_data(as_text=True)
    assert 'value="0708"' in response.get_data(as_text=True)  # kept in the form to fix
    assert listed_ids(response) == []


def test_it_filters_by_tab(desk, factory, bar):
    tab = factory.tab(bar, "Table 2")
    on_tab = factory.payment(bar, tab=tab)
    factory.payment(bar, purpose="test")
    assert listed_ids(desk.get(f"/payments/?tab={tab.id}")) == [on_tab.id]
    # What people see: the tab's number, or part of its name in any case.
    assert listed_ids(desk.get("/payments/?tab=%23" + str(tab.id))) == [on_tab.id]
    assert listed_ids(desk.get("/payments/?tab=table 2")) == [on_tab.id]
    assert listed_ids(desk.get("/payments/?tab=TABLE")) == [on_tab.id]
    assert listed_ids(desk.get("/payments/?tab=table-two")) == []
    assert listed_ids(desk.get("/payments/?tab=50%25")) == []  # % is a letter, not a wildcard
    response = desk.get("/payments/?tab=" + "x" * 61)
    assert response.status_code == 400 and b"number (like 42) or part of its name" in response.data


def test_filters_combine(desk, factory, bar):
    tab = factory.tab(bar, "Table 2")
    wanted = factory.payment(bar, tab=tab, status="paid", created_at=datetime(2024, 5, 2, 8, 0))
    factory.payment(bar, tab=tab, status="failed", created_at=datetime(2024, 5, 2, 8, 0))
    factory.payment(bar, tab=tab, status="paid", created_at=datetime(2024, 5, 5, 8, 0))
    factory.payment(bar, status="paid", created_at=datetime(2024, 5, 2, 8, 0))
    query = f"/payments/?status=paid&tab={tab.id}&from=2024-05-01&to=2024-05-03&phone=0708374149"
    assert listed_ids(desk.get(query)) == [wanted.id]


# Paging


def test_pages_walk_every_payment_once_even_with_equal_times(desk, factory, bar):
    # 40 payments share one instant, across the first page break: only the id can order them.
    for n in range(120):
        factory.payment(bar, created_at=BASE if 30 <= n < 70 else BASE + timedelta(minutes=n))
    expected = [
        p.id for p in sorted(_all_payments(), key=lambda p: (p.created_at, p.id), reverse=True)
    ]

    seen, url, pages = [], "/payments/", 0
    while url:
        response = desk.get(url)
        seen += listed_ids(response)
        url, pages = older_link(response), pages + 1
    assert pages == 3 and seen == expected


def test_the_older_link_keeps_the_filters(desk, factory, bar):
    for n in range(4):
        factory.payment(bar, status="paid", created_at=BASE + timedelta(minutes=n))
        factory.payment(bar, status="failed", created_at=BASE + timedelta(minutes=n))
    first = desk.get("/payments/?status=paid&limit=3")
    link = older_link(first)
    assert "status=paid" in link and "limit=3" in link
    second = desk.get(link)
    assert len(listed_ids(first)) == 3 and len(listed_ids(second)) == 1
    assert older_link(second) is None and b"Newest</a>" in second.data


def test_the_page_size_is_capped(desk, factory, bar):
    for _ in range(3):
        factory.payment(bar)
    assert len(listed_ids(desk.get("/payments/?limit=2"))) == 2
    assert len(listed_ids(desk.get("/payments/?limit=100000"))) == 3
    assert len(listed_ids(desk.get("/payments/?limit=" + "9" * 5000))) == 3
    for bad in ("lots", "0", "-5"):
        response = desk.get(f"/payments/?limit={bad}")
        assert response.status_code == 200 and b"Rows per page must be a number" in response.data
        assert len(listed_ids(response)) == 3


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "2024-05-10T09:00:00_abc",
        "2024-05-10T09:00:00+03:00_5",
        "_5",
        "2024-05-10T09:00:00_99999999999999999999",
        "2024-05-10T09:00:00_-3",
    ],
)
def test_a_tampered_cursor_starts_again_at_the_newest(desk, factory, bar, cursor):
    payment = factory.payment(bar)
    response = desk.get("/payments/", query_string={"before": cursor})
    assert response.status_code == 200
    assert b"That page link was not valid" in response.data and listed_ids(response) == [payment.id]


@pytest.mark.parametrize(
    "query",
    [
        "tab=%C2%B2",
        "tab=" + "9" * 30,
        "tab=0",
        "phone=%00",
        "phone=" + "7" * 5000,
        "status=%00",
        "from=%00",
        "from=0001-01-01",
    ],
)
def test_a_filter_that_cannot_be_read_is_refused_with_400(desk, factory, bar, query):
    factory.payment(bar)
    assert desk.get(f"/payments/?{query}").status_code == 400
    assert desk.get(f"/payments/export.csv?{query}").status_code == 400


@pytest.mark.parametrize("query", ["before=" + "9" * 5000, "before=%C2%B2_%C2%B2"])
def test_a_stale_or_broken_page_link_starts_again_from_the_newest(desk, factory, bar, query):
    """A cursor is only ever ours, copied from a link: a broken one shows page one and says so."""
    payment = factory.payment(bar)
    page = desk.get(f"/payments/?{query}")
    assert page.status_code == 200
    assert BAD_CURSOR in page.get_data(as_text=True)
    assert f'id="payment-row-{payment.id}"' in page.get_data(as_text=True)
    export = desk.get(f"/payments/export.csv?{query}")
    assert export.status_code == 200
    assert [row["id"] for row in csv_rows(export)] == [str(payment.id)]


# htmx


def test_htmx_gets_the_results_fragment_and_a_browser_the_page(desk, factory, bar):
    payment = factory.payment(bar)
    page = desk.get("/payments/")
    fragment = desk.get("/payments/", headers={"HX-Request": "true"})
    assert b"<html" in page.data and b'hx-push-url="true"' in page.data
    assert b"<html" not in fragment.data and b"<form" not in fragment.data
    assert b'id="payment-results"' in fragment.data and listed_ids(fragment) == [payment.id]
    assert "HX-Request" in fragment.headers["Vary"] and "HX-Request" in page.headers["Vary"]


def test_htmx_puts_the_tidy_filters_in_the_address_bar(desk):
    response = desk.get(
        "/payments/?status=paid&from=&to=&phone=0708+374+149&tab=", headers={"HX-Request": "true"}
    )
    assert response.headers["HX-Push-Url"] == "/payments/?status=paid&phone=254708374149"
    with_error = desk.get("/payments/?phone=0708", headers={"HX-Request": "true"})
    assert "HX-Push-Url" not in with_error.headers  # the URL keeps what was typed, to fix it


def test_htmx_history_restore_gets_the_whole_page(desk, factory, bar):
    headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    assert b"<html" in desk.get("/payments/?status=paid", headers=headers).data


def test_htmx_is_told_about_a_bad_filter_in_a_fragment_it_will_swap(desk):
    response = desk.get("/payments/?phone=hello", headers={"HX-Request": "true"})
    assert response.status_code == 200 and b"<html" not in response.data
    assert b"A phone number has only digits" in response.data


# CSV export


def test_the_csv_has_every_column(desk, factory, bar):
    tab = factory.tab(bar, "Table 9")
    payment = factory.payment(
        bar,
        status="paid",
        amount=700,
        tab=tab,
        receipt="SGR1ABCDEF",
        result_code="0",
        message="Paid.",
        created_at=datetime(2024, 5, 1, 22, 30),
        settled_at=datetime(2024, 5, 1, 22, 31, 5),
    )
    response = desk.get("/payments/export.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_data(as_text=True).splitlines()[0] == ",".join(csv_export.HEADER)
    [row] = csv_rows(response)
    assert row == {
        "id": str(payment.id),
        "created_at": "2024-05-02T01:30:00+03:00",
        "settled_at": "2024-05-02T01:31:05+03:00",
        "status": "paid",
        "amount": "700",
        "phone": "2547****149",
        "receipt": "SGR1ABCDEF",
        "result_code": "0",
        "message": "Paid.",
        "tab_id": str(tab.id),
        "tab_label": "Table 9",
        "purpose": "tab",
        "flagged": "no",
        "flag_reason": "",
        "requested_by": "",
        "reversed_amount": "0",
    }


def test_the_csv_applies_the_filters_and_names_the_dates(desk, factory, bar):
    wanted = factory.payment(bar, status="paid", created_at=datetime(2024, 5, 2, 8, 0))
    factory.payment(bar, status="failed", created_at=datetime(2024, 5, 2, 8, 0))
    factory.payment(bar, status="paid", created_at=datetime(2024, 6, 2, 8, 0))
    response = desk.get("/payments/export.csv?status=paid&from=2024-05-01&to=2024-05-31")
    assert [row["id"] for row in csv_rows(response)] == [str(wanted.id)]
    disposition = response.headers["Content-Disposition"]
    assert (
        disposition == 'attachment; filename="kwa-mama-pub-payments-2024-05-01-to-2024-05-31.csv"'
    )


def test_the_csv_is_the_whole_set_not_one_page(desk, factory, bar):
    for n in range(7):
        factory.payment(bar, created_at=BASE + timedelta(minutes=n))
    response = desk.get("/payments/export.csv?limit=2&before=2024-05-10T09:03:00_999")
    assert len(csv_rows(response)) == 7


def test_the_csv_is_fetched_in_batches(desk, factory, bar, monkeypatch):
    monkeypatch.setattr(csv_export, "EXPORT_BATCH_SIZE", 3)
    for n in range(7):
        factory.payment(bar, created_at=BASE if n < 4 else BASE + timedelta(minutes=n))
    expected = [
        p.id for p in sorted(_all_payments(), key=lambda p: (p.created_at, p.id), reverse=True)
    ]
    queries = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "FROM payment" in statement:
            queries.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = desk.get("/payments/export.csv")
        assert response.is_streamed
        ids = [int(row["id"]) for row in csv_rows(response)]
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert ids == expected
    assert len(queries) == 3  # 3 + 3 + 1 rows


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x")', "+254700", "-2+3", "@SUM(A1)", "\tx"])
def test_csv_cells_cannot_become_formulas(desk, factory, bar, text):
    tab = factory.tab(bar, text)
    factory.payment(bar, tab=tab, message=text)
    [row] = csv_rows(desk.get("/payments/export.csv"))
    assert row["message"] == "'" + text and row["tab_label"] == "'" + text


def test_phones_are_masked_unless_the_owner_asks(app, desk, manager, factory, bar):
    factory.payment(bar, phone="254708374149")
    assert csv_rows(desk.get("/payments/export.csv"))[0]["phone"] == "2547****149"
    assert csv_rows(desk.get("/payments/export.csv?phones=full"))[0]["phone"] == "254708374149"
    as_manager = login_as(app, manager)
    assert as_manager.get("/payments/export.csv").status_code == 200
    assert as_manager.get("/payments/export.csv?phones=full").status_code == 403
    assert b"CSV with full phone numbers" not in as_manager.get("/payments/").data
    assert b"CSV with full phone numbers" in desk.get("/payments/").data


def test_exports_are_audited_without_the_phone_number(desk, owner):
    desk.get("/payments/export.csv?phones=full&phone=0708374149&status=paid")
    event_ = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "payments.exported"))
    assert event_.user_id == owner.id and event_.bar_id == owner.bar_id
    assert event_.details == {
        "phones": "full",
        "filters": {"status": "paid", "phone": "2547****149"},
    }


def test_an_export_with_a_bad_filter_explains_instead(desk):
    response = desk.get("/payments/export.csv?phone=abc")
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert b"A phone number has only digits" in response.data


def test_the_export_link_carries_the_filters(desk):
    page = desk.get("/payments/?status=paid&from=2024-05-01").get_data(as_text=True)
    assert 'href="/payments/export.csv?status=paid&amp;from=2024-05-01"' in page


def _all_payments() -> list[Payment]:
    return db.session.scalars(select(Payment)).all()
