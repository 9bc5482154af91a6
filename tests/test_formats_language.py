"""Amounts and times read the same in both languages, month names in the reader's own."""

from __future__ import annotations

from datetime import datetime

from flask_babel import force_locale

from app.formats import kes, local_time


def test_times_read_in_the_readers_language_with_the_same_digits(app):
    moment = datetime(2026, 12, 6, 18, 30)  # 21:30 in Nairobi
    with app.test_request_context():
        assert local_time(moment) == "06 Dec 2026, 21:30"
        with force_locale("sw"):
            assert local_time(moment) == "06 Des 2026, 21:30"
            assert local_time(moment, fmt="%H:%M") == "21:30"


def test_amounts_are_kes_with_commas_in_both(app):
    with app.test_request_context(), force_locale("sw"):
        assert kes(1500) == "KES 1,500"
