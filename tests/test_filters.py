from datetime import datetime

import pytest

from app.formats import kes, local_time


@pytest.mark.parametrize(
    ("amount", "text"),
    [(0, "KES 0"), (1250, "KES 1,250"), (250000, "KES 250,000"), (-50, "-KES 50"), (None, "KES —")],
)
def test_kes_formats_whole_shillings(amount, text):
    assert kes(amount) == text


def test_times_show_in_nairobi_time():
    assert local_time(datetime(2026, 11, 22, 11, 31), fmt="%H:%M") == "14:31"
