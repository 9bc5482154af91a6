"""The reconciliation CSV: one row per day, the figures the page shows (money paid from the
M-Pesa menu in its own columns, after the tries)."""

from __future__ import annotations

import csv
import io

from app.models import Bar
from app.reconciliation.periods import Period
from app.reconciliation.report import KINDS, MENU_KINDS, RangeReport

HEADER = (
    "day",
    "requested",
    *KINDS,
    "requested_kes",
    *(f"{k}_kes" for k in KINDS),
    "success_rate_percent",
    "median_push_to_paid_seconds",
    "p95_push_to_paid_seconds",
    "test_pushes",
    "test_pushes_kes",
    *MENU_KINDS,
    *(f"{k}_kes" for k in MENU_KINDS),
    "mpesa_in_kes",
    "source",
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(report: RangeReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for figures in report.days:
        writer.writerow(_defuse(cell) for cell in _cells(figures))
    return buffer.getvalue()


def _cells(f) -> list:
    return [
        f.day.isoformat(),
        f.requested,
        *(f.counts[k] for k in KINDS),
        f.requested_kes,
        *(f.kes[k] for k in KINDS),
        "" if f.success_rate is None else f"{f.success_rate:.1f}",
        _blank(f.median_seconds),
        _blank(f.p95_seconds),
        f.test_count,
        f.test_kes,
        *(f.menu_counts[k] for k in MENU_KINDS),
        *(f.menu_kes[k] for k in MENU_KINDS),
        f.mpesa_in_kes,
        "nightly summary" if f.written_at else "live",
    ]


def _blank(value):
    return "" if value is None else value


def _defuse(cell):
    """Text a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS):
        return "'" + cell
    return cell


def filename(bar: Bar, period: Period) -> str:
    """`kwa-mama-pub-reconciliation-2024-05-01-to-2024-05-31.csv`."""
    return f"{bar.slug}-reconciliation-{period.start.isoformat()}-to-{period.end.isoformat()}.csv"
