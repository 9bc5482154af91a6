"""Statement import: the owner uploads the M-Pesa org-portal statement and PesaTab matches it.

Statements are built here at run time (CSV text, XLSX through openpyxl), except the sample in
tests/fixtures/daraja. Times in a statement are East Africa Time; PesaTab stores naive UTC
(EAT - 3h).
"""

from __future__ import annotations

import csv
import html
import io
from datetime import datetime

import pytest
from openpyxl import Workbook
from sqlalchemy import event, func, insert, select

from app.extensions import db
from app.models import AuditEvent, Payment, StatementImport, StatementLine
from app.statements import adoption, importer, matching, reader
from app.tabs.totals import totals
from tests.conftest import login_as
from tests.samples import samples_dir

URL = "/reconciliation/statements/"
HEADER = [
    "Receipt No.",
    "Completion Time",
    "Initiation Time",
    "Details",
    "Transaction Status",
    "Paid In",
    "Withdrawn",
    "Balance",
    "Balance Confirmed",
    "Reason Type",
    "Other Party Info",
    "Linked Transaction ID",
    "A/C No.",
]
PREAMBLE = [
    ["Account Holder:", "Kwa Mama Pub"],
    ["Short Code:", "174379"],
    ["Account:", "Utility Account"],
    ["Time Period:", "From 22-11-2026 00:00:00 To 22-11-2026 23:59:59"],
    ["Operator:", "owner"],
    ["Opening Balance:", "15000.00", "Closing Balance:", "15750.00"],
]
FIRST_LINE_ROW = len(PREAMBLE) + 2  # the preamble, the header, then the lines


def line(
    receipt: str,
    when: str = "22-11-2026 14:31:12",
    paid_in: str = "450.00",
    withdrawn: str = "",
    status: str = "Completed",
    reason: str = "Pay Bill Online",
    party: str = "25470****149 - JANE **** DOE",
    account: str = "TAB0042",
) -> list[str]:
    return [
        receipt,
        when,
        when,
        f"{reason} from 254708374149 - JANE DOE Acc. {account}",
        status,
        paid_in,
        withdrawn,
        "15450.00",
        "true",
        reason,
        party,
        "",
        account,
    ]


def csv_statement(lines, preamble=PREAMBLE, header=HEADER) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([*preamble, header, *lines])
    return out.getvalue().encode()


def _cell(column: str, value: str):
    """What a workbook holds: real datetimes and numbers, empty cells as None."""
    if value == "":
        return None
    if column in ("Completion Time", "Initiation Time"):
        return datetime.strptime(value, "%d-%m-%Y %H:%M:%S")
    if column in ("Paid In", "Withdrawn", "Balance"):
        try:
            return float(value.replace(",", ""))
        except ValueError:
            return value  # a typo in the cell, kept as text
    return value


def xlsx_statement(lines, preamble=PREAMBLE, header=HEADER) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in preamble:
        sheet.append(row)
    sheet.append(header)
    for row in lines:
        sheet.append([_cell(column, value) for column, value in zip(header, row, strict=True)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client, content: bytes, name: str = "statement.csv"):
    return client.post(
        URL, data={"statement": (io.BytesIO(content), name)}, content_type="multipart/form-data"
    )


def import_file(bar, content: bytes, name: str = "statement.csv"):
    return importer.import_statement(bar, None, name, io.BytesIO(content))


def lines_of(bar) -> dict[str, StatementLine]:
    return {
        x.receipt: x
        for x in db.session.scalars(select(StatementLine).where(StatementLine.bar_id == bar.id))
    }


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def owner_client(app, owner):
    return login_as(app, owner)


@pytest.fixture
def manager_client(app, manager):
    return login_as(app, manager)


# Importing ---------------------------------------------------------------------------------


def test_it_imports_the_sample_statement(owner_client, factory, bar):
    factory.payment(bar, status="paid", receipt="UKM4ABC12D", amount=450)
    content = (samples_dir() / "org_statement_sample.csv").read_bytes()

    response = upload(owner_client, content, "org_statement_sample.csv")

    assert response.status_code == 302
    found = lines_of(bar)
    assert {r: x.match_state for r, x in found.items()} == {
        "UKM4ABC12D": "matched",
        "UKM4ABC13E": "orphan",
    }
    assert found["UKM4ABC12D"].completion_time == datetime(2026, 11, 22, 11, 31, 12)  # 14:31:12 EAT
    assert found["UKM4ABC12D"].paid_in_cents == 45000
    record = db.session.scalar(select(StatementImport))
    assert (record.shortcode, record.line_count, record.new_lines) == ("174379", 2, 2)
    assert record.period_start == datetime(2026, 11, 21, 21, 0, 0)
    assert record.period_end == datetime(2026, 11, 22, 20, 59, 59)
    shown = page(owner_client.get(response.headers["Location"]))
    assert "Imported org_statement_sample.csv: 2 lines, 2 new." in shown
    assert "UKM4ABC13E" in shown.split('id="orphans"')[1].split('id="amount-differs"')[0]
    assert "UKM4ABC12D" in shown.split('id="matched"')[1]
    assert db.session.scalar(
        select(AuditEvent.action).where(AuditEvent.action == "statement.imported")
    )


def test_csv_and_xlsx_of_the_same_statement_give_the_same_lines(factory, tmp_path):
    rows = [
        line("QAB1", paid_in="1,250.00"),
        line(
            "QAB2",
            withdrawn="-50.00",
            paid_in="",
            reason="Pay Bill Charge",
            when="22-11-2026 18:05:00",
        ),
        line("QAB3", status="Failed"),
    ]
    from_csv, from_xlsx = factory.bar("CSV Bar"), factory.bar("XLSX Bar")
    workbook = tmp_path / "statement.xlsx"
    workbook.write_bytes(xlsx_statement(rows))

    import_file(from_csv, csv_statement(rows))
    with workbook.open("rb") as stream:
        importer.import_statement(from_xlsx, None, "statement.xlsx", stream)

    def seen(bar):
        return {
            r: (
                x.completion_time,
                x.initiation_time,
                x.paid_in_cents,
                x.withdrawn_cents,
                x.status,
                x.reason_type,
                x.other_party,
                x.account_no,
                x.match_state,
            )
            for r, x in lines_of(bar).items()
        }

    assert seen(from_csv) == seen(from_xlsx)
    assert seen(from_csv)["QAB1"][2] == 125000
    assert seen(from_csv)["QAB2"][3] == -5000
    assert {r: v[-1] for r, v in seen(from_csv).items()} == {
        "QAB1": "orphan",
        "QAB2": "not_money_in",
        "QAB3": "not_money_in",
    }


def test_it_reads_exports_with_other_preambles_and_a_currency_column(factory, bar):
    header = [h.upper() if h != "Paid In" else "  paid  in " for h in HEADER]
    header.insert(5, "Currency")
    rows = [[*r[:5], "KES", *r[5:]] for r in (line("QCUR1"), line("QCUR2", paid_in="300.00"))]
    preamble = [["M-PESA Statement"], [], ["Short Code:", "174379"], ["Some new field", "x", "y"]]

    result = import_file(bar, csv_statement(rows, preamble=preamble, header=header))

    assert {r: x.paid_in_cents for r, x in lines_of(bar).items()} == {
        "QCUR1": 45000,
        "QCUR2": 30000,
    }
    # No Time Period in this export: the period is the span of its lines.
    assert (
        result.statement.period_start
        == result.statement.period_end
        == datetime(2026, 11, 22, 11, 31, 12)
    )


def test_it_reads_a_statement_without_any_preamble(factory, bar):
    import_file(bar, csv_statement([line("QNOPRE1")], preamble=[]))
    assert list(lines_of(bar)) == ["QNOPRE1"]


def test_it_parses_amounts_as_exact_cents():
    assert reader.parse_cents("450.00") == 45000
    assert reader.parse_cents("1,250.50") == 125050
    assert reader.parse_cents("") == 0
    assert reader.parse_cents(None) == 0
    assert reader.parse_cents("-50.00") == -5000
    assert reader.parse_cents(0.1 + 0.2) == 30  # a workbook's float, read by its digits
    assert reader.parse_cents(1250) == 125000
    for bad in ("45O.00", "1.005", "12,34", "KES 5", True):
        with pytest.raises(ValueError):
            reader.parse_cents(bad)


def test_it_reads_times_as_text_datetimes_and_excel_serials():
    expected = datetime(2026, 11, 22, 11, 31, 12)
    assert reader.parse_time("22-11-2026 14:31:12") == expected
    assert reader.parse_time(datetime(2026, 11, 22, 14, 31, 12)) == expected
    assert reader.parse_time(46348 + (14 * 3600 + 31 * 60 + 12) / 86400) == expected
    assert reader.parse_time("2026-11-22 14:31:12") == expected
    assert reader.parse_time("") is None
    with pytest.raises(ValueError):
        reader.parse_time("31-02-2026 10:00:00")


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (
            line("QBAD2", paid_in="45O.00"),
            f"Row {FIRST_LINE_ROW + 1}, column 'Paid In': '45O.00' is not an amount.",
        ),
        (
            line("QBAD2", when="2026/22/11 9pm"),
            f"Row {FIRST_LINE_ROW + 1}, column 'Completion Time': '2026/22/11 9pm' is not a date",
        ),
        (
            line("", paid_in="100.00"),
            f"Row {FIRST_LINE_ROW + 1}, column 'Receipt No.': the receipt number is missing.",
        ),
        (
            line("QBAD-2"),
            f"Row {FIRST_LINE_ROW + 1}, column 'Receipt No.': "
            "'QBAD-2' is not an M-Pesa receipt number.",
        ),
    ],
    ids=["amount", "date", "missing-receipt", "receipt"],
)
def test_a_broken_row_is_named_and_nothing_is_kept(owner_client, bar, broken, message):
    response = upload(owner_client, csv_statement([line("QBAD1"), broken, line("QBAD3")]))

    assert response.status_code == 422
    assert message in page(response)
    assert count(StatementLine) == 0 and count(StatementImport) == 0


def test_a_broken_row_after_thousands_of_good_ones_keeps_nothing(bar):
    """Earlier batches were already inserted when the bad row is read: all of it rolls back."""
    rows = [
        *(line(f"QMANY{n:05d}", paid_in="100.00") for n in range(2500)),
        line("QLAST", paid_in="abc"),
    ]

    with pytest.raises(
        reader.StatementError, match=f"Row {FIRST_LINE_ROW + 2500}, column 'Paid In'"
    ):
        import_file(bar, xlsx_statement(rows), "statement.xlsx")

    assert count(StatementLine) == 0 and count(StatementImport) == 0


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "statement.csv", "The file is empty."),
        (b"Account Holder:,Bar\nhello,world\n", "statement.csv", reader.NO_HEADER),
        (
            b"%PDF-1.4 not a spreadsheet",
            "statement.pdf",
            "Upload the statement as a .csv or .xlsx file",
        ),
        (
            b"Receipt No.,Completion Time\n",
            "statement.xls",
            "Upload the statement as a .csv or .xlsx file",
        ),
        (b"Receipt No.,Completion Time\n", "statement.xlsx", "not a readable Excel workbook"),
        (
            b"Receipt No.,Completion Time,Paid In\nQ1,22-11-2026 10:00:00,1.00\n",
            "statement.csv",
            "Row 1: the header has no 'Withdrawn', 'Transaction Status', 'Reason Type' column.",
        ),
        (
            csv_statement([]),
            "statement.csv",
            "The statement has a header row but no transactions under it.",
        ),
    ],
    ids=["empty", "no-header", "pdf", "xls", "fake-xlsx", "missing-columns", "no-lines"],
)
def test_files_that_are_not_statements_get_a_clear_message(
    owner_client, bar, content, name, message
):
    response = upload(owner_client, content, name)

    assert response.status_code == 422
    assert message in page(response)
    assert count(StatementImport) == 0


def test_uploading_without_a_file_asks_for_one(owner_client, bar):
    response = owner_client.post(URL, data={}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "Choose the statement file" in page(response)


def test_importing_the_same_statement_again_changes_nothing(owner_client, factory, bar):
    content = csv_statement([line("QSAME1"), line("QSAME2")])
    upload(owner_client, content)
    before = (count(StatementImport), count(StatementLine), count(AuditEvent))

    response = upload(owner_client, content)

    assert response.status_code == 302
    assert "was already imported on" in page(owner_client.get(response.headers["Location"]))
    assert (count(StatementImport), count(StatementLine), count(AuditEvent)) == before


def test_an_overlapping_statement_adds_only_its_new_lines(factory, bar):
    monday = import_file(
        bar,
        csv_statement(
            [line("QOVER1", when="22-11-2026 12:00:00"), line("QOVER2", when="22-11-2026 15:00:00")]
        ),
    )
    tuesday = import_file(
        bar,
        csv_statement(
            [line("QOVER2", when="22-11-2026 15:00:00"), line("QOVER3")], preamble=PREAMBLE[:3]
        ),
    )

    assert (tuesday.statement.line_count, tuesday.statement.new_lines) == (2, 1)
    assert (
        tuesday.message
        == "Imported statement.csv: 2 lines, 1 new, 1 already known from an earlier statement."
    )
    assert sorted(lines_of(bar)) == ["QOVER1", "QOVER2", "QOVER3"]
    assert lines_of(bar)["QOVER2"].import_id == monday.statement.id
    # The later statement's page still shows the line it shares with the earlier one.
    report = matching.report(tuesday.statement)
    assert report.counts["orphan"] == 2


def test_a_charge_sharing_a_receipt_is_its_own_line(factory, bar):
    import_file(
        bar,
        csv_statement(
            [line("QCHG1"), line("QCHG1", paid_in="", withdrawn="-5.00", reason="Pay Bill Charge")]
        ),
    )
    assert count(StatementLine) == 2


# Matching ----------------------------------------------------------------------------------


def test_it_shows_a_different_amount(owner_client, factory, bar):
    factory.payment(bar, status="paid", receipt="QDIFF1", amount=400)

    response = upload(owner_client, csv_statement([line("QDIFF1", paid_in="450.00")]))

    assert lines_of(bar)["QDIFF1"].match_state == "amount_differs"
    section = page(owner_client.get(response.headers["Location"])).split('id="amount-differs"')[1]
    assert "QDIFF1" in section.split('id="missing"')[0] and "KES 400" in section


def test_it_lists_paid_payments_missing_from_the_statement(owner_client, factory, bar):
    inside = datetime(2026, 11, 22, 9, 0)
    factory.payment(bar, status="paid", receipt="QINSTMT1", amount=450, settled_at=inside)
    factory.payment(bar, status="paid", receipt="QMISSING", amount=700, settled_at=inside)
    factory.payment(
        bar,
        status="paid",
        receipt=None,
        amount=300,
        settled_at=inside,
        flagged=True,
        flag_reason="receipt_pending",
    )
    factory.payment(
        bar, status="paid", receipt="QLATER", amount=900, settled_at=datetime(2026, 11, 23, 9, 0)
    )
    factory.payment(bar, status="failed", amount=800, settled_at=inside)

    response = upload(owner_client, csv_statement([line("QINSTMT1")]))

    report = matching.report(db.session.scalar(select(StatementImport)))
    assert sorted((p.receipt or "-", p.amount) for p in report.missing) == [
        ("-", 300),
        ("QMISSING", 700),
    ]
    section = page(owner_client.get(response.headers["Location"])).split('id="missing"')[1]
    assert "QMISSING" in section and "no receipt yet" in section and "QLATER" not in section


def test_it_does_not_match_another_bars_payment(factory, bar):
    other = factory.bar("Across the Road")
    factory.payment(other, status="paid", receipt="QTHEIRS", amount=450)
    import_file(bar, csv_statement([line("QTHEIRS")]))
    assert lines_of(bar)["QTHEIRS"].match_state == "orphan"


def test_it_refuses_another_short_codes_statement(owner_client, factory, bar):
    factory.live_credentials(bar)
    preamble = [["Short Code:", "600999"], *PREAMBLE[2:]]

    response = upload(owner_client, csv_statement([line("QSC1")], preamble=preamble))

    assert response.status_code == 422
    assert (
        "This statement is for short code 600999, but Kwa Mama Pub takes M-Pesa on 174379."
        in page(response)
    )
    assert count(StatementImport) == 0


def test_a_till_accepts_the_statement_of_its_till_or_store_number(factory, bar):
    factory.live_credentials(bar, kind="till")
    import_file(bar, csv_statement([line("QTILL1")], preamble=[["Short Code:", "5123456"]]))
    import_file(bar, csv_statement([line("QTILL2")], preamble=[["Short Code:", "174380"]]))
    assert count(StatementLine) == 2


def test_it_imports_thousands_of_lines_with_a_bounded_number_of_queries(app, factory, bar):
    db.session.execute(
        insert(Payment),
        [
            {
                "bar_id": bar.id,
                "purpose": "tab",
                "phone": "254708374149",
                "amount": 100,
                "account_reference": "T",
                "description": "Bar tab",
                "status": "paid",
                "callback_token": f"token{n}",
                "receipt": f"QBULK{n:05d}",
            }
            for n in range(0, 2000, 2)
        ],
    )
    db.session.commit()
    content = csv_statement([line(f"QBULK{n:05d}", paid_in="100.00") for n in range(2000)])
    seen = []

    def counter(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", counter)
    try:
        result = import_file(bar, content)
    finally:
        event.remove(db.engine, "before_cursor_execute", counter)

    assert result.statement.new_lines == 2000
    # Two batches of 1,000: one SELECT of receipts and one INSERT each, plus a few fixed ones.
    assert sum(s.startswith("INSERT INTO statement_line") for s in seen) == 2
    assert sum(s.startswith("SELECT payment.receipt") for s in seen) == 2
    assert len(seen) <= 12, seen
    states = dict(
        db.session.execute(
            select(StatementLine.match_state, func.count()).group_by(StatementLine.match_state)
        ).all()
    )
    assert states == {"matched": 1000, "orphan": 1000}


def test_the_upload_has_its_own_size_limit(app, owner_client, bar):
    content = csv_statement([line(f"QSIZE{n}") for n in range(40)])
    app.config["MAX_CONTENT_LENGTH"] = 1024  # the app-wide limit does not apply to statements
    assert upload(owner_client, content).status_code == 302

    app.config["STATEMENT_UPLOAD_MAX_BYTES"] = 2048
    assert upload(owner_client, content + b" ").status_code == 413


# Attaching orphans to tabs -------------------------------------------------------------------


@pytest.fixture
def orphan(factory, bar):
    import_file(bar, csv_statement([line("QORPH1", paid_in="300.00")]))
    return lines_of(bar)["QORPH1"]


def attach_url(line_: StatementLine) -> str:
    return f"{URL}{line_.import_id}/lines/{line_.id}/attach"


def test_a_manager_attaches_an_orphan_and_the_balance_drops_once(
    app, manager_client, factory, bar, orphan
):
    tab = factory.tab(bar, lines=(("Tusker", 4, 250),))

    response = manager_client.post(attach_url(orphan), data={"tab_id": tab.id})
    again = manager_client.post(attach_url(orphan), data={"tab_id": tab.id})

    assert response.status_code == again.status_code == 302
    assert totals(tab).paid == 300 and totals(tab).balance == 700
    payment = db.session.scalar(select(Payment).where(Payment.receipt == "QORPH1"))
    assert (payment.purpose, payment.status, payment.tab_id, payment.amount) == (
        "c2b",
        "paid",
        tab.id,
        300,
    )
    assert payment.phone == "25470****149" and payment.account_reference == "TAB0042"
    db.session.refresh(orphan)
    assert (orphan.match_state, orphan.payment_id, orphan.attached_tab_id) == (
        "matched",
        payment.id,
        tab.id,
    )
    shown = page(manager_client.get(response.headers["Location"]))
    assert "Already attached" in shown
    assert "Attached to" in shown.split('id="matched"')[1]
    assert count(Payment) == 1


def test_two_managers_at_once_still_make_one_payment(factory, bar, orphan):
    """Both read the line as an orphan; the receipt's unique index stops the second."""
    tab = factory.tab(bar, lines=(("Tusker", 4, 250),))
    matching.attach(orphan, tab, None)
    stale = db.session.get(StatementLine, orphan.id)
    stale.match_state, stale.payment_id = "orphan", None  # what the second request had read

    with pytest.raises(reader.StatementError, match="Already attached"):
        matching.attach(stale, tab, None)

    assert count(Payment) == 1 and totals(tab).paid == 300


def test_reimporting_after_attaching_changes_nothing(factory, bar, orphan):
    tab = factory.tab(bar, lines=(("Tusker", 4, 250),))
    matching.attach(orphan, tab, None)

    import_file(bar, csv_statement([line("QORPH1", paid_in="300.00"), line("QNEXT")], preamble=[]))

    assert lines_of(bar)["QORPH1"].match_state == "matched"
    assert totals(tab).paid == 300


def test_it_refuses_a_closed_tab(manager_client, factory, bar, orphan):
    tab = factory.tab(bar, status="settled")
    response = manager_client.post(
        attach_url(orphan), data={"tab_id": tab.id}, follow_redirects=True
    )
    assert "Table 4 is closed; choose an open tab." in page(response)
    assert count(Payment) == 0


def test_it_refuses_an_amount_that_is_not_whole_shillings(manager_client, factory, bar):
    import_file(bar, csv_statement([line("QCENTS", paid_in="300.50")]))
    tab = factory.tab(bar)
    response = manager_client.post(
        attach_url(lines_of(bar)["QCENTS"]), data={"tab_id": tab.id}, follow_redirects=True
    )
    assert "is not whole shillings" in page(response)
    assert count(Payment) == 0


def test_it_asks_for_a_tab(manager_client, bar, orphan):
    response = manager_client.post(attach_url(orphan), data={}, follow_redirects=True)
    assert "Choose the tab to attach the payment to." in page(response)


def test_another_bars_tab_is_not_found(manager_client, factory, bar, orphan):
    theirs = factory.tab(factory.bar("Across the Road"))
    response = manager_client.post(attach_url(orphan), data={"tab_id": theirs.id})
    assert response.status_code == 404
    assert count(Payment) == 0


# Who may do what ----------------------------------------------------------------------------


def test_a_cashier_cannot_use_statements(app, cashier, bar, orphan):
    client = login_as(app, cashier)
    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}{orphan.import_id}").status_code == 403
    assert upload(client, csv_statement([line("QCASH")])).status_code == 403
    assert client.post(attach_url(orphan), data={"tab_id": 1}).status_code == 403


def test_a_manager_reads_statements_but_only_the_owner_uploads(manager_client, bar, orphan):
    index = page(manager_client.get(URL))
    assert "statement.csv" in index and "Import statement" not in index
    assert manager_client.get(f"{URL}{orphan.import_id}").status_code == 200
    assert upload(manager_client, csv_statement([line("QMGR")])).status_code == 403


def test_an_outsider_cannot_see_our_statements(app, outsider, factory, bar, orphan):
    client = login_as(app, outsider)
    theirs = factory.tab(outsider.bar)
    assert "statement.csv" not in page(client.get(URL))
    assert client.get(f"{URL}{orphan.import_id}").status_code == 404
    assert client.post(attach_url(orphan), data={"tab_id": theirs.id}).status_code == 404
    assert count(Payment) == 0


def test_the_upload_needs_a_csrf_token(owner_client, bar):
    response = owner_client.post(
        URL,
        data={"statement": (io.BytesIO(b"x"), "s.csv")},
        content_type="multipart/form-data",
        csrf=False,
    )
    assert response.status_code == 400
    assert count(StatementImport) == 0


# Receipts that never came: a payment the STK query reported paid ----------------------------
# Pushed 14:30 EAT (11:30 UTC), learned paid by query at 14:34; M-Pesa completed it at 14:31:12.
ASKED, LEARNED = datetime(2026, 11, 22, 11, 30), datetime(2026, 11, 22, 11, 34)


def paid_by_query(factory, bar, *, amount=300, phone="254708374149", tab=None, asked=ASKED):
    return factory.payment(
        bar,
        status="paid",
        receipt=None,
        amount=amount,
        phone=phone,
        tab=tab,
        created_at=asked,
        settled_at=asked + (LEARNED - ASKED),
        flagged=True,
        flag_reason="receipt_pending",
    )


def claim_url(line_: StatementLine) -> str:
    return f"{URL}{line_.import_id}/lines/{line_.id}/receipt"


def test_the_statement_gives_a_paid_payment_the_receipt_the_query_could_not(
    owner_client, factory, bar
):
    tab = factory.tab(bar, lines=(("Tusker", 4, 250),))
    payment = paid_by_query(factory, bar, tab=tab)

    response = upload(owner_client, csv_statement([line("QPEND01", paid_in="300.00")]))

    db.session.refresh(payment)
    assert payment.receipt == "QPEND01" and not payment.flagged and payment.flag_reason is None
    assert payment.transaction_time == datetime(2026, 11, 22, 11, 31, 12)
    found = lines_of(bar)["QPEND01"]
    assert (found.match_state, found.payment_id) == ("matched", payment.id)
    assert totals(tab).paid == 300 and count(Payment) == 1
    shown = page(owner_client.get(response.headers["Location"]))
    assert "got its receipt from this statement" in shown
    assert "QPEND01" not in shown.split('id="orphans"')[1].split('id="amount-differs"')[0]
    report = matching.report(db.session.scalar(select(StatementImport)))
    assert report.missing == [] and report.counts == {"matched": 1}
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "payment.receipt_from_statement")
    ).all()
    assert [(e.details["payment_id"], e.details["receipt"], e.details["how"]) for e in events] == [
        (payment.id, "QPEND01", "matched on import")
    ]


def test_a_callback_arriving_after_the_statement_changes_nothing(factory, bar):
    from app.payments import ledger

    payment = paid_by_query(factory, bar)
    import_file(bar, csv_statement([line("QPEND02", paid_in="300.00")]))
    db.session.refresh(payment)

    same = ledger.record(payment, ledger.Outcome(code="0", receipt="QPEND02", amount=300))
    assert same == "duplicate"
    other = ledger.record(payment, ledger.Outcome(code="0", receipt="QOTHER9", amount=300))
    assert other == "mismatch" and payment.flag_reason == "second_receipt"
    assert payment.receipt == "QPEND02"


@pytest.mark.parametrize(
    ("when", "party", "paid_in"),
    [
        (
            "22-11-2026 14:45:00",
            "25470****149 - JANE **** DOE",
            "300.00",
        ),  # after PesaTab learned it was paid
        (
            "22-11-2026 14:20:00",
            "25470****149 - JANE **** DOE",
            "300.00",
        ),  # before the push was asked
        ("22-11-2026 14:31:12", "25471****222 - JOHN **** DOE", "300.00"),  # another phone
        ("22-11-2026 14:31:12", "25470****149 - JANE **** DOE", "350.00"),  # another amount
    ],
)
def test_a_line_that_cannot_be_the_payment_stays_an_orphan(factory, bar, when, party, paid_in):
    payment = paid_by_query(factory, bar)

    result = import_file(
        bar, csv_statement([line("QNOTIT1", when=when, party=party, paid_in=paid_in)])
    )

    db.session.refresh(payment)
    assert (
        result.adopted == 0 and payment.receipt is None and payment.flag_reason == "receipt_pending"
    )
    assert lines_of(bar)["QNOTIT1"].match_state == "orphan"
    assert adoption.pending_candidates(lines_of(bar)["QNOTIT1"]) == []


def test_two_payments_it_could_be_are_left_for_a_person(app, manager_client, factory, bar):
    tab = factory.tab(bar, lines=(("Tusker", 4, 250),))
    first = paid_by_query(factory, bar, tab=tab)
    second = paid_by_query(factory, bar, tab=tab, asked=ASKED + (LEARNED - ASKED) / 4)
    import_file(bar, csv_statement([line("QTWO001", paid_in="300.00")]))
    orphan_ = lines_of(bar)["QTWO001"]
    assert orphan_.match_state == "orphan" and {
        p.id for p in adoption.pending_candidates(orphan_)
    } == {first.id, second.id}

    shown = page(manager_client.get(f"{URL}{orphan_.import_id}"))
    assert f"This is payment {first.id}" in shown and f"This is payment {second.id}" in shown
    assert "Attach to tab" not in shown.split(f'id="line-{orphan_.id}"')[1].split("</tr>")[0]

    refused = manager_client.post(attach_url(orphan_), data={"tab_id": tab.id})
    assert "would count the money twice" in page(manager_client.get(refused.headers["Location"]))
    assert count(Payment) == 2 and totals(tab).paid == 600

    manager_client.post(claim_url(orphan_), data={"payment_id": second.id})
    again = manager_client.post(claim_url(orphan_), data={"payment_id": first.id})

    db.session.refresh(first)
    db.session.refresh(second)
    assert (first.receipt, second.receipt) == (None, "QTWO001")
    assert "already a payment in PesaTab" in page(manager_client.get(again.headers["Location"]))
    db.session.refresh(orphan_)
    assert (orphan_.match_state, orphan_.payment_id) == ("matched", second.id)
    assert count(Payment) == 2 and totals(tab).paid == 600


def test_claiming_a_payment_that_cannot_be_the_line_is_refused(manager_client, factory, bar):
    paid = factory.payment(bar, status="paid", receipt="QHASONE", amount=300, settled_at=LEARNED)
    import_file(bar, csv_statement([line("QCLAIM1", paid_in="300.00")]))
    orphan_ = lines_of(bar)["QCLAIM1"]

    response = manager_client.post(claim_url(orphan_), data={"payment_id": paid.id})

    assert "cannot be payment" in page(manager_client.get(response.headers["Location"]))
    db.session.refresh(orphan_)
    assert orphan_.match_state == "orphan" and orphan_.payment_id is None


def test_another_bars_payment_cannot_be_claimed(app, manager_client, factory, bar):
    elsewhere = paid_by_query(factory, factory.bar("Elsewhere"))
    import_file(bar, csv_statement([line("QCROSS1", paid_in="300.00")]))
    orphan_ = lines_of(bar)["QCROSS1"]

    assert (
        manager_client.post(claim_url(orphan_), data={"payment_id": elsewhere.id}).status_code
        == 404
    )
    db.session.refresh(elsewhere)
    assert elsewhere.receipt is None and lines_of(bar)["QCROSS1"].match_state == "orphan"


def _month(first_day: str, last_day: str) -> list[list[str]]:
    """The preamble with its "Time Period" set to these days (DD-MM-YYYY)."""
    period = ["Time Period:", f"From {first_day} 00:00:00 To {last_day} 23:59:59"]
    return [period if row[0] == "Time Period:" else row for row in PREAMBLE]


def _two_statements(bar):
    """November's statement with an orphan, and December's with its own line."""
    november = csv_statement(
        [line("QNOV01", when="10-11-2026 20:00:00", paid_in="300.00")],
        preamble=_month("01-11-2026", "30-11-2026"),
    )
    december = csv_statement(
        [line("QDEC01", when="10-12-2026 20:00:00", paid_in="500.00")],
        preamble=_month("01-12-2026", "31-12-2026"),
    )
    import_file(bar, november, "nov.csv")
    import_file(bar, december, "dec.csv")
    lines = lines_of(bar)
    return lines["QNOV01"], lines["QDEC01"]


@pytest.mark.parametrize("action", ["attach", "receipt"])
def test_a_line_action_needs_the_line_to_be_on_that_statement(manager_client, factory, bar, action):
    november, december = _two_statements(bar)
    tab = factory.tab(bar, lines=(("Tusker", 4, 250),))
    paid = factory.payment(bar, status="paid", amount=300, receipt=None, tab=tab)
    data = {"tab_id": tab.id} if action == "attach" else {"payment_id": paid.id}

    response = manager_client.post(
        f"{URL}{december.import_id}/lines/{november.id}/{action}", data=data
    )

    assert response.status_code == 404
    db.session.refresh(november)
    assert (november.match_state, november.payment_id, november.attached_tab_id) == (
        "orphan",
        None,
        None,
    )
    assert db.session.get(Payment, paid.id).receipt is None
    assert count(Payment) == 1
    # From its own statement's page the same action goes through.
    own = manager_client.post(
        f"{URL}{november.import_id}/lines/{november.id}/attach", data={"tab_id": tab.id}
    )
    assert own.status_code == 302 and totals(tab).paid == 300 + 300


def test_a_line_from_an_earlier_import_inside_the_period_is_acted_on_from_the_later_page(
    manager_client, factory, bar
):
    """The later statement's page lists the bar's lines inside its period, whichever import
    brought them, so its line actions accept them."""
    import_file(
        bar,
        csv_statement(
            [line("QEARLY", when="10-11-2026 20:00:00", paid_in="300.00")],
            preamble=_month("10-11-2026", "10-11-2026"),
        ),
        "a.csv",
    )
    import_file(
        bar,
        csv_statement(
            [line("QLATE1", when="01-11-2026 08:00:00", paid_in="100.00")],
            preamble=_month("01-11-2026", "30-11-2026"),
        ),
        "b.csv",
    )
    early = lines_of(bar)["QEARLY"]
    later = db.session.scalar(
        select(StatementLine.import_id).where(StatementLine.receipt == "QLATE1")
    )
    assert later != early.import_id
    tab = factory.tab(bar, lines=(("Tusker", 4, 250),))

    response = manager_client.post(f"{URL}{later}/lines/{early.id}/attach", data={"tab_id": tab.id})

    assert response.status_code == 302
    assert totals(tab).paid == 300
