"""Each benchmark in bench/ runs end to end at a tiny size, so they keep working.

These check that a benchmark ran and its numbers are sane (no errors, every payment right),
never its timing targets: those are for `make bench` on a quiet machine. They use PostgreSQL at
127.0.0.1:5432 whatever TEST_DATABASE_URL says (each run creates and drops its own database,
never `test`), gunicorn and a load-generator process, like the real runs.
"""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.slow


def sane(result: dict) -> None:
    """Every target line is complete and every number in it is a real number."""
    assert "error" not in result
    assert result["targets"]
    for line in result["targets"]:
        assert {"target", "figure", "baseline", "ratio", "goal", "met"} <= set(line)
        for value in (line["figure"], line["baseline"], line["ratio"]):
            if isinstance(value, float):
                assert math.isfinite(value)


def met(result: dict, name_start: str) -> bool:
    return next(t for t in result["targets"] if t["target"].startswith(name_start))["met"]


def test_callback_ingest_applies_every_callback_once():
    from bench import callback_ingest

    result = callback_ingest.run("smoke")
    sane(result)
    check = result["check"]
    assert check["all_correct"], check
    assert check["dispositions"]["duplicate"] == check["duplicates_sent"] > 0
    assert met(result, "HTTP errors")
    for phase in result["phases"].values():
        assert phase["failed"] == 0 and phase["throughput"] > 0
        assert phase["latency"]["p50_ms"] <= phase["latency"]["p99_ms"]


def test_status_polling_serves_the_real_fragment_to_signed_in_cashiers():
    from bench import status_polling

    result = status_polling.run("smoke")
    sane(result)
    assert result["login_check"] == "ok"
    assert result["bodies_ok"]
    assert result["answers_check"]["all"], result["answers_check"]
    assert met(result, "HTTP errors")
    assert met(result, "answers are the real fragment")
    assert all(p["ok"] > 0 for p in result["phases"].values())
    # Screens send the version they show: waiting ones get 204, a callback brings the 200.
    changes = result["changes"]
    assert changes["waiting_screens_200"] == 0 and changes["paid_screens_200_before_callback"] == 0
    assert result["answers_fixed"]["204"] > 0 and result["answers_fixed"]["200"] > 0
    assert set(result["phases"]["flat_fragment"]["statuses"]) == {"204"}
    assert set(result["phases"]["flat_full_fragment"]["statuses"]) == {"200"}


def test_data_scale_measures_every_page_and_explains_its_queries():
    from bench import data_scale

    result = data_scale.run("smoke")
    sane(result)
    assert (
        result["rows"]["payments"]
        == data_scale.SCALES["smoke"]["payments"] + data_scale.SCALES["smoke"]["small_payments"]
    )
    for name, both in result["pages"].items():
        assert both["big"]["failed"] == 0 and both["small"]["failed"] == 0, name
    assert result["pages"]["payments: first page"]["big"]["table_rows"] > 1
    for name, plan in result["plans"].items():
        assert plan["status"] == 200 and plan["queries"], name
    for export in result["exports"].values():
        assert export["status"] == 200 and export["rows"] > 0


def test_token_economy_counts_every_fetch():
    from bench import token_economy

    result = token_economy.run("smoke")
    sane(result)
    hour = result["simulated_hour"]
    assert hour["statuses"] == {"sent": hour["pushes"]}
    assert hour["fetches"]["causes"].get("repeat", 0) == 0
    assert hour["fetches"]["causes"]["first"] == token_economy.SCALES["smoke"]["bars"]
    production = result["production_shaped"]
    assert production["failed"] == 0
    # Both gunicorn workers share each token through the database; the baseline's is not counted.
    assert production["fetches"]["causes"].get("repeat", 0) == 0
    assert production["baseline_fetches"] == 1
    assert production["settled"].get("paid") == production["payment_count"]


def test_statement_import_stores_and_matches_every_line():
    from bench import statement_import

    result = statement_import.run("smoke")
    sane(result)
    assert met(result, "every line stored")
    assert all(i["peak_rss_kb"] >= i["rss_before_kb"] > 0 for i in result["imports"])
