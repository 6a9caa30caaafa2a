"""Cost queries: concurrent fetch over 90-day windows, and a compact answer.

Flow used by ``query_view_costs`` (which days: :mod:`finout_mcp.services.periods`)::

    window = periods.resolve_window(period=..., start=..., end=..., today=utc_today())
    series = await fetch_costs(api, view.id, window.span, cost_type, on_window=progress)
    before = periods.comparison_window(window, today=...)                           # optional
    previous = await fetch_costs(api, view.id, before.span, cost_type)
    answer = shape_costs(series, window, today=..., view=view, cost_type=..., previous=..., previous_window=before)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

import anyio
from pydantic import BaseModel, ConfigDict, Field

from finout_mcp.api.models import CostQueryResponse, CostSeries, CostType, View
from finout_mcp.services.errors import first_error
from finout_mcp.services.fencing import fence_all
from finout_mcp.services.figures import ANSWER_BUDGET_BYTES, Money, Pct
from finout_mcp.services.periods import DateSpan, Window, as_window, span_to_ms, split_windows
from finout_mcp.services.results import Envelope

Granularity = Literal["auto", "day", "week", "month", "total"]


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


class CostAnswer(Envelope):
    model_config = ConfigDict(validate_assignment=True)

    view: ViewRef
    cost_type: str
    currency: str
    period: str = Field(
        description='The range in words: "November 2026", "Q3 2026", "2026-11-01..2026-11-25 (...)".'
    )
    first_day: date
    last_day: date
    days: int
    partial: bool = Field(description="True when the range includes today, whose costs are still incomplete.")
    granularity: str
    total: Money
    sum_of_series: Money
    reconciliation_note: str | None = None
    comparison: str | None = Field(
        default=None,
        description="One line: both ranges with dates and day counts, how the second was chosen, the change.",
    )
    previous_period: str | None = None
    previous_first_day: date | None = None
    previous_last_day: date | None = None
    previous_days: int | None = None
    previous_total: Money | None = None
    change_abs: Money | None = None
    change_pct: Pct | None = None
    per_day: Money | None = Field(
        default=None, description="Average per day; given when the two ranges differ in length."
    )
    previous_per_day: Money | None = None
    per_day_change_pct: Pct | None = None
    series: list[SeriesRow]
    biggest_changes: list[ChangeRow] | None = Field(
        default=None,
        description="With a comparison: the series that moved most (absolute change), over ALL series, "
        "not only the top ones listed.",
    )
    series_count: int
    truncated: bool
    timeline: list[TimelineRow]


A = TypeVar("A", bound=CostAnswer)

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


def daily_table(
    series: Sequence[SeriesLike], span: DateSpan
) -> tuple[dict[date, float], dict[str, dict[date, float]]]:
    """(the view's Total by day, each series' cost by day) within ``span``; days without data are absent.

    The Total is the API's "Total" series, or the sum of the series when the answer has none.
    """
    t = _totals(series, span)
    return t.total_daily, t.group_daily


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
    window: DateSpan | Window,
    *,
    today: date,
    view: View | None,
    cost_type: str,
    top_n: int = 10,
    granularity: Granularity = "auto",
    breakdown_series: bool = False,
    previous: Sequence[SeriesLike] | None = None,
    previous_window: DateSpan | Window | None = None,
    currency: str = "USD",
    model: type[A] = CostAnswer,  # type: ignore[assignment]  # (mypy: a TypeVar default)
    extra: dict[str, Any] | None = None,
) -> A:
    """A compact answer (its JSON within 8 KB) for the costs of ``view`` over ``window``.

    All sums use unrounded floats; the model rounds money to 2 decimals and percentages
    to 1 decimal. Points outside the window are ignored. If the answer would still be too
    large, the per-series breakdown and then the granularity are reduced, with a note.
    With ``previous`` (the series over ``previous_window``) the answer compares the two,
    stating both ranges, and per-day averages when their lengths differ.

    ``model`` and ``extra`` let another question shape its answer alike (``query_costs``: no
    view, plus what was asked and where the figures came from).
    """
    top_n = max(1, top_n)
    win = as_window(window)
    span = win.span
    before = as_window(previous_window) if previous_window is not None else None
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
    if previous is not None and before is not None:
        prev = _totals(previous, before.span)

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

    answer = model(
        view=ViewRef(id=view.id, name=view.name) if view is not None else None,
        **(extra or {}),
        cost_type=cost_type,
        currency=currency,
        period=win.label,
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
    if prev is not None and before is not None:
        _compare(answer, win, before, cur.total, prev.total, today, notes)
        answer.biggest_changes = _biggest_changes(cur.by_name, prev.by_name)
        if new_names:
            notes.append(
                f"New this period (no cost in {before.span}): {fence_all(new_names)}; change_pct is "
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
    while len(answer.model_dump_json(exclude_none=True).encode()) > ANSWER_BUDGET_BYTES:
        if len(breakdown_names) > 5:
            breakdown_names = breakdown_names[:5]
            msg = (
                "Per-series breakdown limited to the top 5 series to keep the answer small (8 KB); for every "
                "listed series per bucket, ask a shorter range or a coarser granularity."
            )
        elif breakdown_names:
            breakdown_names = []
            msg = (
                "Per-series breakdown dropped to keep the answer small (8 KB); to get it, ask a shorter range or "
                'a coarser granularity (e.g. "week").'
            )
        elif gran in coarser:
            gran = coarser[gran]
            msg = f"Timeline shown per {gran} to keep the answer small; ask for a shorter range for detail."
        else:
            break
        answer.notes.append(msg)
        _fill_timeline(answer, cur, span, gran, breakdown_names)
    return answer


def _span_text(w: Window) -> str:
    dates = f"{w.first.isoformat()}..{w.last.isoformat()}, {w.days} day{'s' if w.days != 1 else ''}"
    return w.label if dates in w.label or w.label.startswith(f"{w.first}..") else f"{w.label} ({dates})"


def _compare(
    answer: CostAnswer, win: Window, before: Window, total: float, previous: float, today: date, notes: list[str]
) -> None:
    """Fill the comparison fields and the one-line ``comparison``."""
    answer.previous_period = before.label
    answer.previous_first_day = before.first
    answer.previous_last_day = before.last
    answer.previous_days = before.days
    answer.previous_total = previous
    answer.change_abs = total - previous
    answer.change_pct = _pct_change(total, previous)
    pct = f" ({answer.change_pct:+.1f} %)" if answer.change_pct is not None else ""
    line = (
        f"{_span_text(win)}: {total:,.2f} vs {_span_text(before)}, {before.basis or 'the range compared'}: "
        f"{previous:,.2f}; change {total - previous:+,.2f}{pct}."
    )
    if win.days != before.days:
        answer.per_day = total / win.days
        answer.previous_per_day = previous / before.days
        answer.per_day_change_pct = _pct_change(total / win.days, previous / before.days)
        per = f" ({answer.per_day_change_pct:+.1f} %)" if answer.per_day_change_pct is not None else ""
        line += (
            f" The ranges differ in length ({win.days} vs {before.days} days): per day "
            f"{total / win.days:,.2f} vs {previous / before.days:,.2f}{per}."
        )
    answer.comparison = line
    if win.last >= today and before.last < today:
        notes.append(
            f"Today ({today.isoformat()}) is still incomplete, while {before.last.isoformat()} is a full day: "
            "the change understates the current range."
        )
    if win.first <= before.last and before.first <= win.last:
        notes.append("The two ranges overlap; their shared days count in both totals.")


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
