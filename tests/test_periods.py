"""Which days a cost question covers, and which days it is compared with (same kind)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest

from finout_mcp.services.errors import InputError
from finout_mcp.services.periods import DateSpan, comparison_window, resolve_window, split_whole_months
from tests.support import preset_span

TODAY = date(2026, 11, 25)


def compared(today: date = TODAY, **kwargs: str) -> tuple[DateSpan, DateSpan, str]:
    w = resolve_window(today=today, **kwargs)
    c = comparison_window(w, today=today)
    return w.span, c.span, c.basis


def d(text: str) -> date:
    return date.fromisoformat(text)


def span(a: str, b: str) -> DateSpan:
    return DateSpan(d(a), d(b))


def test_a_calendar_month_is_compared_with_the_calendar_month_before() -> None:
    w, c, basis = compared(period="last_month")
    assert w == span("2026-10-01", "2026-10-31")
    assert c == span("2026-09-01", "2026-09-30")
    assert basis == "the calendar month before"
    # March (31 days) against February (28): the month, not the 31 days before
    _, c, _ = compared(today=d("2026-04-10"), period="last_month")
    assert c == span("2026-02-01", "2026-02-28")


def test_a_month_given_as_dates_is_still_a_month() -> None:
    _, c, basis = compared(start="2026-10-01", end="2026-10-31")
    assert c == span("2026-09-01", "2026-09-30") and basis == "the calendar month before"
    label = resolve_window(start="2026-10-01", end="2026-10-31", today=TODAY).label
    assert label == "October 2026"


def test_quarters_and_years() -> None:
    w, c, basis = compared(period="last_quarter")
    assert w == span("2026-07-01", "2026-09-30") and c == span("2026-04-01", "2026-06-30")
    assert basis == "the quarter before"
    assert resolve_window(period="last_quarter", today=TODAY).label == "Q3 2026"
    w, c, basis = compared(today=d("2026-02-10"), period="last_quarter")
    assert w == span("2025-10-01", "2025-12-31") and c == span("2025-07-01", "2025-09-30")
    w, c, basis = compared(period="last_year")
    assert c == span("2024-01-01", "2024-12-31") and basis == "the year before"
    assert c.days == 366 and w.days == 365
    w, c, basis = compared(period="last_12_months")
    assert w == span("2025-11-01", "2026-10-31") and c == span("2024-11-01", "2025-10-31")
    assert basis == "the 12 calendar months before"
    # two whole months given as dates: the two months before
    _, c, basis = compared(start="2026-09-01", end="2026-10-31")
    assert c == span("2026-07-01", "2026-08-31") and basis == "the 2 calendar months before"


def test_to_date_ranges_compare_with_the_same_days_before() -> None:
    w, c, basis = compared(period="month_to_date")
    assert w == span("2026-11-01", "2026-11-25") and c == span("2026-10-01", "2026-10-25")
    assert basis == "the same days of the previous month"
    # 31 March to date against February: clamped to February's last day
    _, c, _ = compared(today=d("2026-03-31"), period="month_to_date")
    assert c == span("2026-02-01", "2026-02-28")
    _, c, _ = compared(today=d("2026-12-01"), period="month_to_date")
    assert c == span("2026-11-01", "2026-11-01")
    for p in ("quarter_to_date", "this_quarter"):
        w, c, basis = compared(period=p)
        assert w == span("2026-10-01", "2026-11-25") and c == span("2026-07-01", "2026-08-25")
        assert basis == "the same days of the previous quarter"
    for p in ("year_to_date", "this_year"):
        w, c, basis = compared(period=p)
        assert w == span("2026-01-01", "2026-11-25") and c == span("2025-01-01", "2025-11-25")
    _, c, _ = compared(today=d("2028-02-29"), period="year_to_date")
    assert c == span("2027-01-01", "2027-02-28")


def test_last_n_days_and_odd_ranges_compare_with_the_days_just_before() -> None:
    w, c, basis = compared(period="last_30_days")
    assert w == span("2026-10-26", "2026-11-24") and c == span("2026-09-26", "2026-10-25")
    assert basis == "the 30 days before"
    _, c, basis = compared(start="2026-10-05", end="2026-10-18")
    assert c == span("2026-09-21", "2026-10-04") and basis == "the 14 days before"


def test_an_explicit_comparison_window() -> None:
    w = resolve_window(period="last_month", today=TODAY)
    c = comparison_window(w, today=TODAY, start="2025-10-01", end="2025-10-31")
    assert c.span == span("2025-10-01", "2025-10-31") and c.label == "October 2025"
    same_length = comparison_window(w, today=TODAY, start="2025-10-01")
    assert same_length.span == span("2025-10-01", "2025-10-31")
    with pytest.raises(InputError, match="compare_end was given without compare_start"):
        comparison_window(w, today=TODAY, end="2025-10-31")
    with pytest.raises(InputError, match="compare_end=2025-09-30 is before compare_start"):
        comparison_window(w, today=TODAY, start="2025-10-01", end="2025-09-30")
    with pytest.raises(InputError, match=r"compare_start=.*not an ISO date"):
        comparison_window(w, today=TODAY, start="last october")


def test_new_presets() -> None:
    assert preset_span("this_quarter", TODAY) == span("2026-10-01", "2026-11-25")
    assert preset_span("last_quarter", d("2026-01-05")) == span("2025-10-01", "2025-12-31")
    assert preset_span("this_year", TODAY) == span("2026-01-01", "2026-11-25")


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (date(2025, 11, 1), date(2026, 10, 31)),
        (date(2025, 11, 17), date(2026, 3, 9)),  # partial months at both ends
        (date(2024, 1, 1), date(2024, 12, 31)),  # leap year: Jan+Feb = 60 days fit
        (date(2026, 5, 3), date(2026, 5, 20)),
    ],
)
def test_monthly_query_pieces_never_cut_a_month(first: date, last: date) -> None:
    span = DateSpan(first, last)
    pieces = split_whole_months(span, 60)
    assert pieces[0].first == first and pieces[-1].last == last
    for a, b in itertools.pairwise(pieces):
        assert b.first == a.last + timedelta(days=1)
        assert b.first.day == 1  # each piece after the first starts a month: none is cut
    assert all(p.days <= 60 for p in pieces)
    months = {(d.year, d.month) for p in pieces for d in (p.first, p.last)}
    owners = {
        m: {i for i, p in enumerate(pieces) if (p.first.year, p.first.month) <= m <= (p.last.year, p.last.month)}
        for m in months
    }
    assert all(len(o) == 1 for o in owners.values())
