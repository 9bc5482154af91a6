"""The geometry of a small bar chart, drawn as inline SVG by the template (no script).

Heights are proportional to the largest value, which fills the plot; a zero is no bar at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask_babel import format_date

from app.formats import kes
from app.i18n import _

WIDTH = 480
PLOT_TOP = 8
PLOT_HEIGHT = 120
AXIS_HEIGHT = 18
GAP = 0.2  # of each slot, left empty between bars


@dataclass(frozen=True)
class Column:
    key: str  # for the element id: hour-20, day-2024-05-01
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int

    @property
    def tip(self) -> str:
        return f"{self.label}: {kes(self.value)}"


@dataclass(frozen=True)
class Tick:
    x: float
    text: str


@dataclass(frozen=True)
class Chart:
    title: str
    summary: str
    columns: list[Column]
    ticks: list[Tick]
    width: int = WIDTH
    height: int = PLOT_TOP + PLOT_HEIGHT + AXIS_HEIGHT
    baseline: int = PLOT_TOP + PLOT_HEIGHT

    @property
    def empty(self) -> bool:
        return not any(c.value for c in self.columns)


def bar_chart(title: str, items: list[tuple[str, str, int]], tick_every: int) -> Chart:
    """`items` are (key, label, value); every `tick_every`-th label is on the axis."""
    slot = WIDTH / max(1, len(items))
    top = max((value for _key, _label, value in items), default=0)
    columns = []
    for n, (key, label, value) in enumerate(items):
        height = round(PLOT_HEIGHT * value / top, 1) if top and value > 0 else 0.0
        columns.append(
            Column(
                key,
                round(n * slot + slot * GAP / 2, 2),
                round(PLOT_TOP + PLOT_HEIGHT - height, 1),
                round(slot * (1 - GAP), 2),
                height,
                label,
                value,
            )
        )
    # Ticks start at their bar's left edge, so the first label is not cut off at the border.
    ticks = [
        Tick(columns[n].x, _short(label))
        for n, (_key, label, _value) in enumerate(items)
        if n % tick_every == 0
    ]
    return Chart(title, _summary(columns), columns, ticks)


def hourly(paid_by_hour: list[int]) -> Chart:
    """Paid KES per local hour of one day."""
    items = [
        (f"hour-{h:02d}", f"{h:02d}:00–{(h + 1) % 24:02d}:00", v)
        for h, v in enumerate(paid_by_hour)
    ]
    return bar_chart(_("Paid KES per hour"), items, tick_every=3)


def daily(days: list[tuple[date, int]]) -> Chart:
    """Paid KES per day of a range (days named in the reader's language)."""
    items = [(f"day-{d.isoformat()}", format_date(d, "EEE dd MMM"), v) for d, v in days]
    every = 1 if len(items) <= 8 else 7
    return bar_chart(_("Paid KES per day"), items, tick_every=every)


def _short(label: str) -> str:
    return label.split("–")[0] if "–" in label else label.split(" ", 1)[-1]


def _summary(columns: list[Column]) -> str:
    total = sum(c.value for c in columns)
    if not total:
        return _("Nothing was paid.")
    best = max(columns, key=lambda c: c.value)
    return _(
        "%(total)s in all; the most, %(best)s, in %(when)s.",
        total=kes(total),
        best=kes(best.value),
        when=best.label,
    )
