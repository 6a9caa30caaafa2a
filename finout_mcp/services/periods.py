"""Date ranges for cost questions: presets, ISO dates, and the window to compare with.

One home for "which days does this question cover?", used by every cost tool (v1 views and
the v2 ``query_costs``)::

    window = resolve_window(period="last_month", today=today)              # November 2026
    before = comparison_window(window, today=today)                        # October 2026
    other = comparison_window(window, today=today, start="2025-11-01")     # the same month last year

Preset semantics (all in UTC, relative to ``today``):

* ``last_7_days`` / ``last_30_days`` / ``last_90_days``: the N *full* days ending
  yesterday (today is excluded because its costs are still incomplete).
* ``month_to_date``: the 1st of this month .. today (partial; on the 1st it is one day).
* ``quarter_to_date`` / ``this_quarter``: the first day of this calendar quarter .. today.
* ``year_to_date`` / ``this_year``: 1 January .. today.
* ``last_month`` / ``last_quarter`` / ``last_year``: the previous calendar month / quarter / year.
* ``last_12_months``: the 12 full calendar months before the current month.

No period and no dates means ``last_30_days``.

The comparison is *of the same kind* (:func:`comparison_window`): a calendar month with the
calendar month before, a quarter with the quarter before, a year with the year before (also
when given as start/end covering exactly whole months); a to-date range with the same days of
the previous month / quarter / year; ``last_N_days`` and any other range with the same number
of days just before it. Explicit ``start``/``end`` set any other comparison window.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal, get_args

from finout_mcp.services.errors import InputError
from finout_mcp.services.fencing import fence

Period = Literal[
    "last_7_days",
    "last_30_days",
    "month_to_date",
    "last_month",
    "last_90_days",
    "quarter_to_date",
    "this_quarter",
    "last_quarter",
    "year_to_date",
    "this_year",
    "last_12_months",
    "last_year",
]
PERIODS: tuple[str, ...] = get_args(Period)
DEFAULT_PERIOD = "last_30_days"
MAX_WINDOW_DAYS = 90  # Finout's longest cost query
MIN_DATE = date(2010, 1, 1)

# What a window is, for choosing the comparison of the same kind.
Kind = Literal["days", "months", "month_to_date", "quarter_to_date", "year_to_date"]


@dataclass(frozen=True, slots=True)
class DateSpan:
    """An inclusive range of whole UTC days."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def __str__(self) -> str:
        return f"{self.first.isoformat()}..{self.last.isoformat()}"


@dataclass(frozen=True, slots=True)
class Window:
    """A span with what it is: ``label`` names it for people ("November 2026", "Q3 2026",
    "2026-11-01..2026-11-25 (month to date)"); ``kind`` picks the comparison of the same kind."""

    span: DateSpan
    kind: Kind
    label: str
    basis: str = ""  # for a comparison window: how it was chosen ("the calendar month before")

    @property
    def first(self) -> date:
        return self.span.first

    @property
    def last(self) -> date:
        return self.span.last

    @property
    def days(self) -> int:
        return self.span.days


# ----------------------------------------------------------------------------- calendar helpers


def month_start(d: date) -> date:
    return d.replace(day=1)


def add_months(d: date, months: int) -> date:
    """The first day of the month ``months`` after ``d``'s month."""
    idx = d.year * 12 + (d.month - 1) + months
    return date(idx // 12, idx % 12 + 1, 1)


def month_end(d: date) -> date:
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


def quarter_start(d: date) -> date:
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def _same_day_in_month(first_of_month: date, day: int) -> date:
    """Day ``day`` of the month starting ``first_of_month``, clamped to its last day (31 → 30 Nov)."""
    return first_of_month.replace(day=min(day, calendar.monthrange(first_of_month.year, first_of_month.month)[1]))


def _one_year_after(d: date) -> date:
    try:
        return d.replace(year=d.year + 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year + 1, day=28)


def _whole_months(span: DateSpan) -> int:
    """How many calendar months ``span`` covers exactly (0 if it does not start on a 1st and end on a last day)."""
    if span.first.day != 1 or span.last != month_end(span.last):
        return 0
    return (span.last.year - span.first.year) * 12 + span.last.month - span.first.month + 1


def _months_label(span: DateSpan) -> str:
    n = _whole_months(span)
    first = span.first
    if n == 1:
        return first.strftime("%B %Y")
    if n == 3 and (first.month - 1) % 3 == 0:
        return f"Q{(first.month - 1) // 3 + 1} {first.year}"
    if n == 12 and first.month == 1:
        return str(first.year)
    return f"{first.strftime('%b %Y')} – {span.last.strftime('%b %Y')} ({n} months)"


def as_window(span: DateSpan | Window) -> Window:
    """``span`` as a :class:`Window` (its kind guessed from its shape); a window as itself."""
    return span if isinstance(span, Window) else _window(span)


def _window(span: DateSpan, kind: Kind | None = None, basis: str = "") -> Window:
    """``span`` with its kind (guessed from its shape unless given) and a label."""
    if kind is None:
        kind = "months" if _whole_months(span) else "days"
    if kind == "months":
        label = _months_label(span)
    elif kind == "days":
        label = f"{span} ({span.days} days)" if span.days > 1 else span.first.isoformat()
    else:
        what = kind.replace("_", " ")
        label = f"{span} ({what}, {span.days} days)"
    return Window(span, kind, label, basis)


# ----------------------------------------------------------------------------- resolving


def _example(today: date) -> str:
    lm_first = add_months(today, -1)
    return (
        f'Example: start="{lm_first.isoformat()}", end="{month_end(lm_first).isoformat()}" '
        f'(ISO dates, end inclusive), or period="last_month". Periods: {", ".join(PERIODS)}.'
    )


def _preset(period: str, today: date) -> tuple[DateSpan, Kind]:
    p = period.strip().lower().replace("-", "_").replace(" ", "_")
    yesterday = today - timedelta(days=1)
    if p in ("last_7_days", "last_30_days", "last_90_days"):
        n = int(p.split("_")[1])
        return DateSpan(today - timedelta(days=n), yesterday), "days"
    if p == "month_to_date":
        return DateSpan(month_start(today), today), "month_to_date"
    if p == "last_month":
        first = add_months(today, -1)
        return DateSpan(first, month_end(first)), "months"
    if p in ("quarter_to_date", "this_quarter"):
        return DateSpan(quarter_start(today), today), "quarter_to_date"
    if p == "last_quarter":
        first = add_months(quarter_start(today), -3)
        return DateSpan(first, quarter_start(today) - timedelta(days=1)), "months"
    if p in ("year_to_date", "this_year"):
        return DateSpan(date(today.year, 1, 1), today), "year_to_date"
    if p == "last_12_months":
        this_month = month_start(today)
        return DateSpan(add_months(this_month, -12), this_month - timedelta(days=1)), "months"
    if p == "last_year":
        return DateSpan(date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)), "months"
    raise InputError(
        f"Unknown period {fence(period)}.",
        hint=f"Use one of: {', '.join(PERIODS)}; or give start/end dates. {_example(today)}",
    )


def parse_date(name: str, value: str | date, today: date) -> date:
    """An ISO date (a datetime is taken in UTC); :class:`InputError` naming ``name`` otherwise."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    text = value.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{name}={fence(value)} is not an ISO date (YYYY-MM-DD).", hint=_example(today)) from None
    return dt.astimezone(UTC).date() if dt.tzinfo else dt.date()


def _blank(value: str | date | None) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _dates(
    start: str | date,
    end: str | date | None,
    today: date,
    *,
    names: tuple[str, str] = ("start", "end"),
    default_end: date | None = None,
) -> DateSpan:
    first = parse_date(names[0], start, today)
    last = parse_date(names[1], end, today) if not _blank(end) and end is not None else (default_end or today)
    latest = _one_year_after(today)
    for name, d in zip(names, (first, last), strict=True):
        if d < MIN_DATE:
            raise InputError(
                f"{name}={d.isoformat()} is before {MIN_DATE.isoformat()}; Finout has no costs that old.",
                hint=_example(today),
            )
        if d > latest:
            raise InputError(
                f"{name}={d.isoformat()} is more than a year after today ({today.isoformat()}).",
                hint=_example(today),
            )
    if first > today:
        raise InputError(
            f"{names[0]}={first.isoformat()} is in the future (today is {today.isoformat()} UTC).",
            hint=_example(today),
        )
    if last < first:
        raise InputError(
            f"{names[1]}={last.isoformat()} is before {names[0]}={first.isoformat()}.", hint=_example(today)
        )
    return DateSpan(first, last)


def resolve_window(
    *,
    period: str | None = None,
    start: str | date | None = None,
    end: str | date | None = None,
    today: date,
) -> Window:
    """Turn the tool arguments into a :class:`Window`.

    Either ``period`` or ``start`` (with optional ``end``, default today) — not both.
    Nothing at all means ``last_30_days``. Raises :class:`InputError` with an example.
    """
    has_period = period is not None and period.strip() != ""
    has_start, has_end = not _blank(start), not _blank(end)
    if has_period and (has_start or has_end):
        raise InputError("Give either period or start/end, not both.", hint=_example(today))
    if not has_start:
        if has_end:
            raise InputError("end was given without start.", hint=_example(today))
        span, kind = _preset(period if has_period and period else DEFAULT_PERIOD, today)
        return _window(span, kind)
    assert start is not None
    return _window(_dates(start, end, today))


def resolve_span(
    *,
    period: str | None = None,
    start: str | date | None = None,
    end: str | date | None = None,
    today: date,
) -> DateSpan:
    """The :class:`DateSpan` of :func:`resolve_window`."""
    return resolve_window(period=period, start=start, end=end, today=today).span


# ----------------------------------------------------------------------------- comparison


def preceding_span(span: DateSpan) -> DateSpan:
    """The span of the same number of days immediately before ``span``."""
    last = span.first - timedelta(days=1)
    return DateSpan(last - timedelta(days=span.days - 1), last)


def _to_date_before(window: Window) -> Window:
    """The same days of the previous month / quarter / year as a to-date window."""
    first, last = window.first, window.last
    if window.kind == "month_to_date":
        prev_first = add_months(first, -1)
        prev_last = _same_day_in_month(prev_first, last.day)
        basis = "the same days of the previous month"
    elif window.kind == "quarter_to_date":
        prev_first = add_months(first, -3)
        prev_last = _same_day_in_month(add_months(last, -3), last.day)
        basis = "the same days of the previous quarter"
    else:
        prev_first = first.replace(year=first.year - 1)
        prev_last = _same_day_in_month(last.replace(year=last.year - 1, day=1), last.day)
        basis = "the same days of the previous year"
    return _window(DateSpan(prev_first, prev_last), window.kind, basis)


def comparison_window(
    window: Window,
    *,
    today: date,
    start: str | date | None = None,
    end: str | date | None = None,
) -> Window:
    """The window to compare ``window`` with.

    With ``start`` (and optionally ``end``; default: as many days as ``window``), exactly that
    range. Otherwise the previous period of the same kind (see the module docstring).
    """
    if not _blank(start):
        assert start is not None
        first = parse_date("compare_start", start, today)
        span = _dates(
            start,
            end,
            today,
            names=("compare_start", "compare_end"),
            default_end=first + timedelta(days=window.days - 1),
        )
        return _window(span, basis="the comparison range you gave")
    if not _blank(end):
        raise InputError(
            "compare_end was given without compare_start.",
            hint="Give compare_start (and compare_end, or leave it out for a window as long as the main one), "
            "or neither for the previous period of the same kind.",
        )
    if window.kind == "months":
        n = _whole_months(window.span)
        first = add_months(window.first, -n)
        span = DateSpan(first, window.first - timedelta(days=1))
        what = {1: "calendar month", 3: "quarter", 12: "year"}.get(n)
        if what == "quarter" and (window.first.month - 1) % 3:
            what = None
        if what == "year" and window.first.month != 1:
            what = None
        basis = f"the {what} before" if what else f"the {n} calendar months before"
        return _window(span, "months", basis)
    if window.kind in ("month_to_date", "quarter_to_date", "year_to_date"):
        return _to_date_before(window)
    return _window(preceding_span(window.span), "days", f"the {window.days} days before")


# ----------------------------------------------------------------------------- Finout windows


def _day_start_ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000


def span_to_ms(span: DateSpan) -> tuple[int, int]:
    """First day 00:00:00.000 UTC and last day 23:59:59.999 UTC, in epoch milliseconds."""
    return _day_start_ms(span.first), _day_start_ms(span.last + timedelta(days=1)) - 1


def split_whole_months(span: DateSpan, max_days: int = MAX_WINDOW_DAYS) -> list[DateSpan]:
    """Like :func:`split_windows`, but every piece ends on a month's last day (or the span's), so
    no calendar month is cut between two pieces: whole months are packed while they fit in
    ``max_days``. Needs ``max_days`` >= 31."""
    if max_days < 31:
        raise ValueError("max_days must be >= 31 to hold a whole month")
    out: list[DateSpan] = []
    cur = span.first
    while cur <= span.last:
        last = min(span.last, add_months(cur.replace(day=1), 1) - timedelta(days=1))
        while last < span.last:
            nxt = min(span.last, add_months(last + timedelta(days=1), 1) - timedelta(days=1))
            if (nxt - cur).days + 1 > max_days:
                break
            last = nxt
        out.append(DateSpan(cur, last))
        cur = last + timedelta(days=1)
    return out


def split_windows(span: DateSpan, max_days: int = MAX_WINDOW_DAYS) -> list[DateSpan]:
    """Contiguous, non-overlapping windows of at most ``max_days`` days covering ``span``."""
    if max_days < 1:
        raise ValueError("max_days must be >= 1")
    out: list[DateSpan] = []
    cur = span.first
    while cur <= span.last:
        last = min(span.last, cur + timedelta(days=max_days - 1))
        out.append(DateSpan(cur, last))
        cur = last + timedelta(days=1)
    return out
