"""5. Statement import: an M-Pesa org-portal statement of 100,000 lines (CSV, as the portal
exports it: preamble, header, 90% money in, 10% charges), half of whose receipts are paid
payments in PesaTab, imported by `app.statements.importer.import_statement`.

Each import runs in a fresh child process, so its peak resident memory (the kernel's high
water mark, the whole process: Python, the app, SQLAlchemy, the import) is its own. The
baseline, in a child process of its own too, is the floor for the same bytes: `csv.reader` over
the file and `COPY` of every row into an unindexed table with psycopg. Three statements (three
bars) give a median and the worst.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from bench import seed, stack
from bench.stats import ms, percentile, ratio, target

SCALES = {
    "full": {"lines": 100_000, "imports": 3},
    "smoke": {"lines": 2_000, "imports": 1},
}
TIME_TARGET_S, MEMORY_TARGET_MIB = 10.0, 200.0
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


def receipt(bar_n: int, n: int) -> str:
    return f"R{bar_n}{n:08d}"


def write_statement(
    path: Path, bar_n: int, lines: int, start: datetime
) -> list[tuple[str, int, datetime]]:
    """The CSV file; returns (receipt, KES, completion time) of every money-in line."""
    rng = random.Random(bar_n)
    money_in = []
    with path.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerows(
            [
                ["Account Holder:", f"Statement Bar {bar_n}"],
                ["Short Code:", ""],
                [
                    "Time Period:",
                    f"From {start:%d-%m-%Y} 00:00:00 "
                    f"To {start + timedelta(days=31):%d-%m-%Y} 23:59:59",
                ],
                ["Operator:", "owner"],
                HEADER,
            ]
        )
        balance = 15_000.0
        for n in range(lines):
            when = start + timedelta(seconds=n * 26)
            stamp = f"{when:%d-%m-%Y %H:%M:%S}"
            if n % 10 == 9:  # a charge: money out
                fee = rng.choice((5.0, 10.5, 23.0))
                balance -= fee
                writer.writerow(
                    [
                        receipt(bar_n, n),
                        stamp,
                        stamp,
                        "Pay Bill Charge",
                        "Completed",
                        "",
                        f"{fee:,.2f}",
                        f"{balance:,.2f}",
                        "true",
                        "Pay Bill Fee",
                        "",
                        "",
                        "",
                    ]
                )
                continue
            kes = rng.randrange(50, 5000)
            balance += kes
            writer.writerow(
                [
                    receipt(bar_n, n),
                    stamp,
                    stamp,
                    f"Pay Bill Online from 2547****{n % 1000:03d} - JANE DOE Acc. TAB{n}",
                    "Completed",
                    f"{kes:,.2f}",
                    "",
                    f"{balance:,.2f}",
                    "true",
                    "Pay Bill Online",
                    f"2547****{n % 1000:03d} - JANE **** DOE",
                    "",
                    f"TAB{n}",
                ]
            )
            money_in.append((receipt(bar_n, n), kes, when - timedelta(hours=3)))
    return money_in


def _paid_payments(url: str, bar_id: int, money_in: list) -> int:
    """Half of the money-in lines were asked for in PesaTab: paid payments with those receipts."""
    rows = [
        (
            bar_id,
            "api",
            "254720000000",
            kes,
            "TAB",
            "Bar tab",
            "paid",
            f"{r.lower()}{bar_id:04d}x",
            r,
            kes,
            when,
            when,
            when,
            when,
            False,
            0,
        )
        for i, (r, kes, when) in enumerate(money_in)
        if i % 2 == 0
    ]
    columns = (
        "bar_id, purpose, phone, amount, account_reference, description, status, callback_token, "
        "receipt, paid_amount, created_at, sent_at, settled_at, updated_at, flagged, query_attempts"
    )
    with (
        psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY payment ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute("VACUUM ANALYZE payment")  # a live table has statistics; a fresh COPY has none
    return len(rows)


# -- the child processes -------------------------------------------------------------------------


def _rss_kb() -> int:
    return stack.rss_kb(os.getpid())


def _peak_kb() -> int:
    """This process's high-water mark (VmHWM). Not ru_maxrss: Linux carries that across exec
    from the forking parent, so a child would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def child_import(bar_id: int, path: str) -> dict:
    """In a fresh process: the app, then one import, timed; the process's memory before and peak."""
    from sqlalchemy import func, select

    from app import create_app
    from app.extensions import db
    from app.models import Bar, StatementLine
    from app.statements import importer

    app = create_app()
    with app.app_context():
        bar = db.session.get(Bar, bar_id)
        before = _rss_kb()
        started = time.perf_counter()
        with open(path, "rb") as stream:
            result = importer.import_statement(bar, None, Path(path).name, stream)
        seconds = time.perf_counter() - started
        peak = _peak_kb()
        states = dict(
            db.session.execute(
                select(StatementLine.match_state, func.count())
                .where(StatementLine.bar_id == bar_id)
                .group_by(StatementLine.match_state)
            ).all()
        )
        record = result.statement
        return {
            "seconds": seconds,
            "rss_before_kb": before,
            "peak_rss_kb": peak,
            "line_count": record.line_count,
            "new_lines": record.new_lines,
            "match_states": states,
        }


def child_floor(path: str) -> dict:
    """In a fresh process: the same bytes parsed by csv.reader and COPYed into a bare table."""
    url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    before = _rss_kb()
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE floor_line (cells text[])")
        with (
            open(path, newline="", encoding="utf-8-sig") as stream,
            cur.copy("COPY floor_line (cells) FROM STDIN") as copy,
        ):
            for row in csv.reader(stream):
                copy.write_row((row,))
        conn.commit()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rss_before_kb": before, "peak_rss_kb": _peak_kb()}


def _in_child(env: dict, call: str) -> dict:
    code = (
        "import json; from bench import statement_import as s; "
        f"print('RESULT ' + json.dumps({call}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=stack.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"child failed: {done.stderr[-3000:]}")


# -- the run -------------------------------------------------------------------------------------


def run(scale: str = "full") -> dict:
    s = SCALES[scale]
    with stack.database("statements") as url, tempfile.TemporaryDirectory() as folder:
        env = stack.app_env(url)
        stack.migrate(env)
        with stack.app_context(env):
            bar_ids = seed.bars(s["imports"], "Statement Bar")
        files, expected = [], []
        start = datetime(2026, 10, 1)
        for n, bar_id in enumerate(bar_ids, start=1):
            path = Path(folder) / f"statement-{n}.csv"
            money_in = write_statement(path, n, s["lines"], start)
            expected.append(
                {"money_in": len(money_in), "matched": _paid_payments(url, bar_id, money_in)}
            )
            files.append(path)
        imports, floors = [], []
        for bar_id, path in zip(bar_ids, files, strict=True):
            floors.append(_in_child(env, f"s.child_floor({str(path)!r})"))
            imports.append(_in_child(env, f"s.child_import({bar_id}, {str(path)!r})"))
        size = files[0].stat().st_size
    return _figures(s, imports, floors, expected, size)


def _figures(s: dict, imports: list, floors: list, expected: list, size: int) -> dict:
    secs = [i["seconds"] for i in imports]
    floor_secs = [f["seconds"] for f in floors]
    peak = max(i["peak_rss_kb"] for i in imports) / 1024
    growth = max(i["peak_rss_kb"] - i["rss_before_kb"] for i in imports) / 1024
    floor_peak = max(f["peak_rss_kb"] for f in floors) / 1024
    correct = all(
        i["line_count"] == s["lines"]
        and i["new_lines"] == s["lines"]
        and i["match_states"].get("matched") == e["matched"]
        and i["match_states"].get("orphan") == e["money_in"] - e["matched"]
        for i, e in zip(imports, expected, strict=True)
    )
    p50, p99 = percentile(secs, 50), percentile(secs, 99)
    f50, f99 = percentile(floor_secs, 50), percentile(floor_secs, 99)
    targets = [
        target(
            f"import {s['lines']:,} lines: median",
            round(p50, 2),
            "s",
            f"< {TIME_TARGET_S:.0f} s",
            p50 < TIME_TARGET_S,
            baseline=round(f50, 2),
            ratio_value=ratio(p50, f50),
            note="baseline: csv.reader + COPY of the same file",
        ),
        target(
            f"import {s['lines']:,} lines: p99 (worst of {len(secs)})",
            round(p99, 2),
            "s",
            f"< {TIME_TARGET_S:.0f} s",
            p99 < TIME_TARGET_S,
            baseline=round(f99, 2),
            ratio_value=ratio(p99, f99),
        ),
        target(
            "peak memory of the importing process",
            round(peak, 1),
            "MiB",
            f"< {MEMORY_TARGET_MIB:.0f} MB",
            peak < MEMORY_TARGET_MIB * 1e6 / 2**20,
            baseline=round(floor_peak, 1),
            ratio_value=ratio(peak, floor_peak),
            note=f"growth during the import {growth:.1f} MiB",
        ),
        target("every line stored, every receipt matched", correct, "", "yes", correct),
    ]
    return {
        "settings": s,
        "file_mib": round(size / 2**20, 1),
        "imports": imports,
        "floors": floors,
        "expected": expected,
        "timing_ms": {"p50": ms(p50), "p99": ms(p99)},
        "targets": targets,
    }
