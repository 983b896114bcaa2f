"""Dashboard charts drawn on the server as inline SVG (no script, no CDN: consoles often run
without internet access). Pure: series in, markup out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta

from markupsafe import Markup

WIDTH, HEIGHT = 360, 120  # SVG user units; the chart scales to its card
TOP, BOTTOM, LEFT = 14, 18, 4  # room for the max label and the dates


def day_range(today: date, days: int) -> list[date]:
    """The ``days`` days ending today, oldest first."""
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


def bar_chart(
    title: str,
    days: Sequence[date],
    values: dict[date, int],
    label: Callable[[int], str],
    color: str = "#0d6efd",
) -> Markup:
    """One bar per day; each bar's tooltip gives the day and its formatted value."""
    top = max([values.get(d, 0) for d in days] + [1])
    slot = (WIDTH - LEFT) / max(len(days), 1)
    plot = HEIGHT - TOP - BOTTOM
    bars = []
    for n, day in enumerate(days):
        value = values.get(day, 0)
        height = round(plot * value / top, 1) if value else 0
        x = round(LEFT + n * slot + slot * 0.1, 1)
        y = round(TOP + plot - height, 1)
        bars.append(
            Markup(
                '<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{}">'
                "<title>{}: {}</title></rect>"
            ).format(x, y, round(slot * 0.8, 1), height, color, day.isoformat(), label(value))
        )
    first, last = days[0].strftime("%d %b"), days[-1].strftime("%d %b")
    return Markup(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{t}" '
        'preserveAspectRatio="none" width="100%" height="{h}">'
        '<text x="{l}" y="10" font-size="9" fill="#6c757d">max {top}</text>{bars}'
        '<line x1="{l}" y1="{base}" x2="{w}" y2="{base}" stroke="#adb5bd" stroke-width="0.5"/>'
        '<text x="{l}" y="{h2}" font-size="9" fill="#6c757d">{first}</text>'
        '<text x="{w}" y="{h2}" font-size="9" fill="#6c757d" text-anchor="end">{last}</text>'
        "</svg>"
    ).format(
        w=WIDTH, h=HEIGHT, t=title, l=LEFT, top=label(top if any(values.values()) else 0),
        bars=Markup("").join(bars), base=TOP + plot, h2=HEIGHT - 4, first=first, last=last,
    )  # fmt: skip
