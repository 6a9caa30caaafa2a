"""Cost queries: date ranges, 90-day windows, concurrent fetch, and a compact answer.

Flow used by ``query_view_costs``::

    span = resolve_span(period=..., start=..., end=..., today=utc_today())
    series = await fetch_costs(api, view.id, span, cost_type, on_window=progress)
    previous = await fetch_costs(api, view.id, previous_span(span), cost_type)   # optional
    answer = shape_costs(series, span, today=..., view=view, cost_type=..., previous=..., previous_span=...)

Preset semantics (all in UTC, relative to ``today``):

* ``last_7_days`` / ``last_30_days`` / ``last_90_days``: the N *full* days ending
  yesterday (today is excluded because its costs are still incomplete).
* ``month_to_date``: the 1st of this month .. today (partial; on the 1st it is one day).
* ``quarter_to_date`` / ``year_to_date``: first day of the quarter / year .. today (partial).
* ``last_month``: the previous calendar month.
* ``last_12_months``: the 12 full calendar months before the current month.
* ``last_year``: the previous calendar year.

No period and no dates means ``last_30_days``.
"""

from __future__ import annotations

import calendar
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal, NamedTuple, Protocol, get_args

import anyio
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from finout_mcp.api.models import CostQueryResponse, CostSeries, CostType, View
from finout_mcp.services.errors import InputError, first_error
from finout_mcp.services.fencing import fence, fence_all

Period = Literal[
    "last_7_days",
    "last_30_days",
    "month_to_date",
    "last_month",
    "last_90_days",
    "quarter_to_date",
    "year_to_date",
    "last_12_months",
    "last_year",
]
PERIODS: tuple[str, ...] = get_args(Period)
DEFAULT_PERIOD = "last_30_days"
MAX_WINDOW_DAYS = 90
MIN_DATE = date(2010, 1, 1)
ANSWER_BUDGET_BYTES = 15_500  # the serialised answer is kept below 16 KB

Granularity = Literal["auto", "day", "week", "month", "total"]


# ----------------------------------------------------------------------------- dates


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


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _add_months(d: date, months: int) -> date:
    """The first day of the month ``months`` after ``d``'s month."""
    idx = d.year * 12 + (d.month - 1) + months
    return date(idx // 12, idx % 12 + 1, 1)


def _month_end(d: date) -> date:
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


def _one_year_after(d: date) -> date:
    try:
        return d.replace(year=d.year + 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year + 1, day=28)


def _example(today: date) -> str:
    lm_first = _add_months(today, -1)
    return (
        f'Example: start="{lm_first.isoformat()}", end="{_month_end(lm_first).isoformat()}" '
        f'(ISO dates, end inclusive), or period="last_month". Periods: {", ".join(PERIODS)}.'
    )


def preset_span(period: str, today: date) -> DateSpan:
    """The span of a preset ``period`` relative to ``today`` (see the module docstring)."""
    p = period.strip().lower().replace("-", "_").replace(" ", "_")
    yesterday = today - timedelta(days=1)
    if p in ("last_7_days", "last_30_days", "last_90_days"):
        n = int(p.split("_")[1])
        return DateSpan(today - timedelta(days=n), yesterday)
    if p == "month_to_date":
        return DateSpan(_month_start(today), today)
    if p == "last_month":
        first = _add_months(today, -1)
        return DateSpan(first, _month_end(first))
    if p == "quarter_to_date":
        return DateSpan(date(today.year, 3 * ((today.month - 1) // 3) + 1, 1), today)
    if p == "year_to_date":
        return DateSpan(date(today.year, 1, 1), today)
    if p == "last_12_months":
        this_month = _month_start(today)
        return DateSpan(_add_months(this_month, -12), this_month - timedelta(days=1))
    if p == "last_year":
        return DateSpan(date(today.year - 1, 1, 1), date(today.year - 1, 12, 31))
    raise InputError(
        f"Unknown period {fence(period)}.",
        hint=f"Use one of: {', '.join(PERIODS)}; or give start/end dates. {_example(today)}",
    )


def _parse_date(name: str, value: str | date, today: date) -> date:
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


def resolve_span(
    *,
    period: str | None = None,
    start: str | date | None = None,
    end: str | date | None = None,
    today: date,
) -> DateSpan:
    """Turn the tool arguments into an inclusive :class:`DateSpan`.

    Either ``period`` or ``start`` (with optional ``end``, default today) — not both.
    Nothing at all means ``last_30_days``. Raises :class:`InputError` with an example.
    """
    has_period = period is not None and period.strip() != ""
    has_start, has_end = not _blank(start), not _blank(end)
    if has_period and (has_start or has_end):
        raise InputError(
            "Give either period or start/end, not both.",
            hint=_example(today),
        )
    if not has_start:
        if has_end:
            raise InputError("end was given without start.", hint=_example(today))
        return preset_span(period if has_period and period else DEFAULT_PERIOD, today)
    assert start is not None
    first = _parse_date("start", start, today)
    last = _parse_date("end", end, today) if has_end and end is not None else today
    latest = _one_year_after(today)
    for name, d in (("start", first), ("end", last)):
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
            f"start={first.isoformat()} is in the future (today is {today.isoformat()} UTC).",
            hint=_example(today),
        )
    if last < first:
        raise InputError(
            f"end={last.isoformat()} is before start={first.isoformat()}.",
            hint=_example(today),
        )
    return DateSpan(first, last)


def previous_span(span: DateSpan) -> DateSpan:
    """The span of the same number of days immediately before ``span``."""
    last = span.first - timedelta(days=1)
    return DateSpan(last - timedelta(days=span.days - 1), last)


def _day_start_ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000


def span_to_ms(span: DateSpan) -> tuple[int, int]:
    """First day 00:00:00.000 UTC and last day 23:59:59.999 UTC, in epoch milliseconds."""
    return _day_start_ms(span.first), _day_start_ms(span.last + timedelta(days=1)) - 1


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


# ----------------------------------------------------------------------------- fetching


class CostApi(Protocol):
    async def query_costs(
        self,
        view_id: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        cost_type: CostType | None = None,
    ) -> CostQueryResponse: ...


def _ms_to_day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date()


class Point(NamedTuple):
    """A merged day of a series (the API's points were validated when parsed)."""

    time: int
    cost: float

    @property
    def amount(self) -> float:
        return self.cost


@dataclass(frozen=True)
class Series:
    """A series merged over date windows: same shape as :class:`CostSeries`, no re-validation."""

    name: str
    data: list[Point]

    @property
    def is_total(self) -> bool:
        return self.name == "Total"


class SeriesLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def is_total(self) -> bool: ...
    @property
    def data(self) -> Sequence[PointLike]: ...


class PointLike(Protocol):
    @property
    def time(self) -> int: ...
    @property
    def amount(self) -> float: ...


def merge_series(parts: Sequence[Sequence[SeriesLike]]) -> list[Series]:
    """Merge series by name: points concatenated, sorted by time, same timestamps summed.

    Series keep the order of their first appearance.
    """
    acc: dict[str, dict[int, float]] = {}
    for part in parts:
        for s in part:
            points = acc.setdefault(s.name, {})
            for p in s.data:
                points[p.time] = points.get(p.time, 0.0) + p.amount
    return [Series(name, [Point(t, c) for t, c in sorted(pts.items())]) for name, pts in acc.items()]


async def fetch_costs(
    api: CostApi,
    view_id: str,
    span: DateSpan,
    cost_type: CostType | None,
    *,
    on_window: Callable[[int, int], Awaitable[None]] | None = None,
) -> list[Series]:
    """Fetch every ≤90-day window of ``span`` concurrently and merge the series by name.

    The client caps concurrency (5 in flight). ``on_window(done, total)`` is awaited after
    each window completes. An error in any window cancels the others and is re-raised as
    itself (not wrapped in an exception group).
    """
    windows = split_windows(span)
    results: list[list[CostSeries]] = [[] for _ in windows]
    done = 0

    async def one(i: int, w: DateSpan) -> None:
        nonlocal done
        start_ms, end_ms = span_to_ms(w)
        resp = await api.query_costs(view_id, start_ms=start_ms, end_ms=end_ms, cost_type=cost_type)
        results[i] = list(resp.data)
        done += 1
        if on_window is not None:
            await on_window(done, len(windows))

    try:
        async with anyio.create_task_group() as tg:
            for i, w in enumerate(windows):
                tg.start_soon(one, i, w)
    except BaseExceptionGroup as group:  # surface the client's own error, not a group
        raise first_error(group) from None
    return merge_series(results)


# ----------------------------------------------------------------------------- answer model


def _r2(v: float) -> float:
    return round(v, 2) + 0.0  # +0.0 turns -0.0 into 0.0


def _r1(v: float) -> float:
    return round(v, 1) + 0.0


Money = Annotated[float, AfterValidator(_r2)]
Pct = Annotated[float, AfterValidator(_r1)]


class ViewRef(BaseModel):
    id: str
    name: str


class SeriesRow(BaseModel):
    model_config = ConfigDict(validate_assignment=True)

    name: str
    total: Money
    share_pct: Pct | None = Field(default=None, description="Share of the view total, in percent.")
    previous_total: Money | None = None
    change_abs: Money | None = None
    change_pct: Pct | None = None


class ChangeRow(BaseModel):
    name: str
    total: Money
    previous_total: Money
    change_abs: Money
    change_pct: Pct | None = None


class TimelineRow(BaseModel):
    period: str = Field(description='Bucket: "2026-10-05" (day), "2026-W41" (ISO week), "2026-10" (month).')
    total: Money
    top: dict[str, Money] | None = Field(
        default=None, description="Per-series amounts for the top series (non-zero only)."
    )


class CostAnswer(BaseModel):
    model_config = ConfigDict(validate_assignment=True)

    view: ViewRef
    cost_type: str
    currency: str
    first_day: date
    last_day: date
    days: int
    partial: bool = Field(description="True when the range includes today, whose costs are still incomplete.")
    granularity: str
    total: Money
    sum_of_series: Money
    reconciliation_note: str | None = None
    previous_first_day: date | None = None
    previous_last_day: date | None = None
    previous_total: Money | None = None
    change_abs: Money | None = None
    change_pct: Pct | None = None
    series: list[SeriesRow]
    biggest_changes: list[ChangeRow] | None = Field(
        default=None,
        description="With a comparison: the series that moved most (absolute change), over ALL series, "
        "not only the top ones listed.",
    )
    series_count: int
    truncated: bool
    timeline: list[TimelineRow]
    notes: list[str] = Field(default_factory=list)


# ----------------------------------------------------------------------------- shaping


def _daily(series: SeriesLike, span: DateSpan) -> dict[date, float]:
    out: dict[date, float] = {}
    for p in series.data:
        d = _ms_to_day(p.time)
        if span.first <= d <= span.last:
            out[d] = out.get(d, 0.0) + p.amount
    return out


def _bucket(d: date, granularity: str, span: DateSpan) -> str:
    if granularity == "day":
        return d.isoformat()
    if granularity == "week":
        iso = d.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if granularity == "month":
        return f"{d.year:04d}-{d.month:02d}"
    return str(span)


def _auto_granularity(days: int) -> str:
    if days <= 31:
        return "day"
    if days <= 120:
        return "week"
    return "month"


def _pct_change(cur: float, prev: float) -> float | None:
    if abs(prev) < 1e-9:
        return None
    return (cur - prev) / abs(prev) * 100.0


@dataclass
class _Totals:
    total: float
    sum_of_series: float
    by_name: dict[str, float]
    total_daily: dict[date, float]
    group_daily: dict[str, dict[date, float]]


def _totals(series: Sequence[SeriesLike], span: DateSpan) -> _Totals:
    merged = merge_series([series])
    total_s = next((s for s in merged if s.is_total), None)
    group_daily = {s.name: _daily(s, span) for s in merged if not s.is_total}
    by_name = {name: sum(d.values()) for name, d in group_daily.items()}
    if total_s is not None:
        total_daily = _daily(total_s, span)
    else:
        total_daily = {}
        for d in group_daily.values():
            for day, v in d.items():
                total_daily[day] = total_daily.get(day, 0.0) + v
    total = sum(total_daily.values())
    sum_of_series = sum(by_name.values()) if by_name else total
    return _Totals(total, sum_of_series, by_name, total_daily, group_daily)


BIGGEST_CHANGES = 5


def _biggest_changes(current: dict[str, float], previous: dict[str, float]) -> list[ChangeRow]:
    """The series with the largest absolute change, increases and decreases alike."""
    names = set(current) | set(previous)
    moves = [(current.get(n, 0.0) - previous.get(n, 0.0), n) for n in names]
    moves.sort(key=lambda t: (-abs(t[0]), t[1]))
    return [
        ChangeRow(
            name=n,
            total=current.get(n, 0.0),
            previous_total=previous.get(n, 0.0),
            change_abs=delta,
            change_pct=_pct_change(current.get(n, 0.0), previous.get(n, 0.0)),
        )
        for delta, n in moves[:BIGGEST_CHANGES]
        if abs(delta) >= 0.005
    ]


def shape_costs(
    series: Sequence[SeriesLike],
    span: DateSpan,
    *,
    today: date,
    view: View,
    cost_type: str,
    top_n: int = 10,
    granularity: Granularity = "auto",
    breakdown_series: bool = False,
    previous: Sequence[SeriesLike] | None = None,
    previous_span: DateSpan | None = None,
    currency: str = "USD",
) -> CostAnswer:
    """A compact answer (well under 16 KB) for the costs of ``view`` over ``span``.

    All sums use unrounded floats; the model rounds money to 2 decimals and percentages
    to 1 decimal. Points outside ``span`` are ignored. If the answer would still be too
    large, the per-series breakdown and then the granularity are reduced, with a note.
    """
    top_n = max(1, top_n)
    cur = _totals(series, span)
    notes: list[str] = []

    recon: str | None = None
    if cur.by_name and abs(cur.total - cur.sum_of_series) >= 0.01:
        diff = cur.total - cur.sum_of_series
        recon = (
            f"The view's Total ({cur.total:,.2f}) differs from the sum of its series "
            f"({cur.sum_of_series:,.2f}) by {diff:,.2f}; the view's grouping may not cover every cost "
            "(e.g. costs without a value for the grouping key)."
        )

    prev: _Totals | None = None
    if previous is not None and previous_span is not None:
        prev = _totals(previous, previous_span)

    ranked = sorted(cur.by_name.items(), key=lambda kv: (-kv[1], kv[0]))
    shown, rest = ranked[:top_n], ranked[top_n:]
    denom = cur.total if abs(cur.total) > 1e-9 else None

    def share(v: float) -> float | None:
        return None if denom is None else v / denom * 100.0

    rows: list[SeriesRow] = []
    new_names: list[str] = []
    for name, value in shown:
        row = SeriesRow(name=name, total=value, share_pct=share(value))
        if prev is not None:
            if name in prev.by_name:
                p = prev.by_name[name]
                row.previous_total = p
                row.change_abs = value - p
                row.change_pct = _pct_change(value, p)
            else:
                row.previous_total = 0.0
                row.change_abs = value
                new_names.append(name)
        rows.append(row)
    if rest:
        rest_total = sum(v for _, v in rest)
        other = SeriesRow(name=f"Other ({len(rest)} series)", total=rest_total, share_pct=share(rest_total))
        if prev is not None:
            p = sum(prev.by_name.get(n, 0.0) for n, _ in rest)
            other.previous_total = p
            other.change_abs = rest_total - p
            other.change_pct = _pct_change(rest_total, p)
        rows.append(other)
        notes.append(
            f"Showing the top {len(shown)} of {len(ranked)} series; the other {len(rest)} are rolled up "
            f'into "Other". Raise top_n to {len(ranked)} to see all {len(ranked)} series.'
        )

    if span.last >= today:
        notes.append(f"The range includes today ({today.isoformat()} UTC): the latest day's costs are incomplete.")
    if not cur.total_daily and not cur.by_name:
        notes.append("Finout returned no cost data for this range.")

    answer = CostAnswer(
        view=ViewRef(id=view.id, name=view.name),
        cost_type=cost_type,
        currency=currency,
        first_day=span.first,
        last_day=span.last,
        days=span.days,
        partial=span.last >= today,
        granularity="total",
        total=cur.total,
        sum_of_series=cur.sum_of_series,
        reconciliation_note=recon,
        series=rows,
        series_count=len(ranked),
        truncated=bool(rest),
        timeline=[],
        notes=notes,
    )
    if prev is not None and previous_span is not None:
        answer.previous_first_day = previous_span.first
        answer.previous_last_day = previous_span.last
        answer.previous_total = prev.total
        answer.change_abs = cur.total - prev.total
        answer.change_pct = _pct_change(cur.total, prev.total)
        answer.biggest_changes = _biggest_changes(cur.by_name, prev.by_name)
        if new_names:
            notes.append(
                f"New this period (no cost in {previous_span}): {fence_all(new_names)}; change_pct is "
                "not defined for them."
            )
        gone = [n for n, v in prev.by_name.items() if n not in cur.by_name and abs(v) >= 0.01]
        if gone:
            listed = fence_all(gone[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
            notes.append(f"Series with cost in the previous period but none now: {listed}.")

    answer.notes = notes  # (validation copied the list given to the constructor)
    gran = _auto_granularity(span.days) if granularity == "auto" else granularity
    breakdown_names = [n for n, _ in shown] if breakdown_series else []
    _fill_timeline(answer, cur, span, gran, breakdown_names)

    # Size guard: shrink the breakdown, then coarsen the timeline, until it fits.
    coarser = {"day": "week", "week": "month", "month": "total"}
    while len(answer.model_dump_json()) > ANSWER_BUDGET_BYTES:
        if len(breakdown_names) > 5:
            breakdown_names = breakdown_names[:5]
            msg = "Per-series breakdown limited to the top 5 series to keep the answer small."
        elif breakdown_names:
            breakdown_names = []
            msg = "Per-series breakdown dropped to keep the answer small; ask for a shorter range."
        elif gran in coarser:
            gran = coarser[gran]
            msg = f"Timeline shown per {gran} to keep the answer small; ask for a shorter range for detail."
        else:
            break
        answer.notes.append(msg)
        _fill_timeline(answer, cur, span, gran, breakdown_names)
    return answer


def _fill_timeline(answer: CostAnswer, cur: _Totals, span: DateSpan, gran: str, names: list[str]) -> None:
    totals: dict[str, float] = {}
    per: dict[str, dict[str, float]] = {}
    d = span.first
    while d <= span.last:  # every bucket of the span appears, even with no data
        b = _bucket(d, gran, span)
        totals[b] = totals.get(b, 0.0) + cur.total_daily.get(d, 0.0)
        if names:
            slot = per.setdefault(b, {})
            for n in names:
                v = cur.group_daily.get(n, {}).get(d)
                if v is not None:
                    slot[n] = slot.get(n, 0.0) + v
        d += timedelta(days=1)
    rows = []
    for b, t in totals.items():
        top = {n: v for n, v in per.get(b, {}).items() if abs(v) >= 0.005} if names else None
        rows.append(TimelineRow(period=b, total=t, top=top))
    answer.timeline = rows
    answer.granularity = gran
