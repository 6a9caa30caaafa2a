"""Cost anomalies: the days and series of a view whose cost departs from their own normal.

Flow used by ``find_cost_anomalies``::

    span, notes = checked_span(periods.resolve_span(period=..., start=..., end=..., today=...), today)
    fetched = history_span(span)                      # LOOKBACK_DAYS more before it, to learn "normal"
    series = await costs.fetch_costs(api, view.id, fetched, cost_type)
    answer = find_anomalies(series, span=span, fetched=fetched, view=view, cost_type=...)
    how = await drilldown.drill(catalog, view.name, answer.anomalies[0].series)   # the key of its series
    set_next_steps(answer, next_steps(view, answer.anomalies[0], ..., how.where, how.breakdown), ...)

Method, per series (the view's Total too), on log cost (``services/baseline.py``):

1. remove the weekday effects (each weekday's median departure from its centred week);
2. for each day, fit Tukey's resistant line through the (up to) :data:`WINDOW_DAYS` days before it,
   at least :data:`MIN_WINDOW_DAYS` (days already flagged are replaced by what was expected of them,
   so a long spike cannot become its own normal), extrapolate one day, and measure the departure in
   robust standard deviations (1.4826 x MAD of the window's unflagged days around the line, at least
   :data:`MIN_SIGMA`);
3. flag the day when the departure is at least :data:`THRESHOLD` and the cost is at least
   :data:`MIN_CHANGE` above (spike) or below (drop) the expected cost;
4. consecutive flagged days of one direction form one anomaly (one day between them that leans
   the same way by at least half the threshold is bridged).

Anomalies whose excess is under ``min_excess`` dollars (default: :data:`SMALL_SHARE` of the view's
average daily cost) are left out, and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from finout_mcp.api.models import MegabillKey, View
from finout_mcp.services import baseline
from finout_mcp.services.costs import SeriesLike, ViewRef, daily_table
from finout_mcp.services.drilldown import SeriesKey, group_name
from finout_mcp.services.errors import InputError
from finout_mcp.services.fencing import fence
from finout_mcp.services.figures import ANSWER_BUDGET_BYTES, Money, Pct
from finout_mcp.services.periods import DateSpan
from finout_mcp.services.results import Envelope

LOOKBACK_DAYS = 56  # history fetched before the checked days: 8 weeks of "normal"
WINDOW_DAYS = 56  # each day is compared with the line through the (up to) 8 weeks before it
MIN_WINDOW_DAYS = 28  # and needs at least 4 of them
THRESHOLD = 4.0  # robust standard deviations
MIN_CHANGE = 0.1  # and at least 10% above or below expected
MIN_SIGMA = 0.02  # a near-constant series still needs a 4 x 2% = 8% move
DEFAULT_TOP_N = 10  # the default answer is kept within 8 KB; asking for more anomalies lifts that
SMALL_SHARE = 0.005  # default min_excess: 0.5% of the view's average daily cost
MAX_CHECKED_DAYS = 366

METHOD = (
    "Per series: weekday effects removed, then each day compared with a resistant trend line through "
    f"the (up to) {WINDOW_DAYS} days before it (log cost; earlier flagged days replaced by their expected cost); "
    f"flagged at >= {THRESHOLD:g} robust standard deviations (MAD) and >= {MIN_CHANGE:.0%} away from "
    f"expected. Normal is learned from the {LOOKBACK_DAYS} days before the checked range too."
)


# ----------------------------------------------------------------------------- dates


def checked_span(span: DateSpan, today: date) -> tuple[DateSpan, list[str]]:
    """The days that can be checked: complete days only (today's costs are still coming in)."""
    notes: list[str] = []
    last = min(span.last, today - timedelta(days=1))
    if last < span.first:
        raise InputError(
            f"The range {span} has no complete day yet (today, {today.isoformat()} UTC, is still incomplete).",
            hint='Use period="last_30_days" (the default) or end the range yesterday or earlier.',
        )
    if last < span.last:
        notes.append(
            f"Checked through {last.isoformat()}: today's costs are incomplete, so later days are left out."
        )
    if (last - span.first).days + 1 > MAX_CHECKED_DAYS:
        raise InputError(
            f"The range {span} is longer than {MAX_CHECKED_DAYS} days.",
            hint='Check at most a year at a time, e.g. period="last_90_days".',
        )
    return DateSpan(span.first, last), notes


def history_span(span: DateSpan) -> DateSpan:
    """``span`` with the :data:`LOOKBACK_DAYS` before it: what is fetched."""
    return DateSpan(span.first - timedelta(days=LOOKBACK_DAYS), span.last)


# ----------------------------------------------------------------------------- detection


@dataclass(frozen=True, slots=True)
class DayCheck:
    day: date
    actual: float
    expected: float
    score: float  # robust z: positive above expected
    flagged: bool


def check_days(values: Sequence[float], first_day: date, *, threshold: float = THRESHOLD) -> list[DayCheck]:
    """Each day after the first ``MIN_WINDOW_DAYS``, compared with its own normal (see the module docstring).

    ``values`` are consecutive daily costs starting at ``first_day`` (missing days as 0).
    """
    n = len(values)
    if n <= MIN_WINDOW_DAYS:
        return []
    offset = baseline.log_offset(values)
    logs = baseline.to_log(values, offset)
    wd = baseline.weekdays(first_day, n)
    profile = baseline.weekday_profile(logs, wd)
    plain = [x - profile[w] for x, w in zip(logs, wd, strict=True)]
    clean = list(plain)  # flagged days replaced by what was expected of them
    flagged_at: set[int] = set()
    out: list[DayCheck] = []
    for t in range(MIN_WINDOW_DAYS, n):
        lo = max(0, t - WINDOW_DAYS)
        window = clean[lo:t]
        a, b = baseline.resistant_line(window)
        # The spread of normal days only: a replaced day sits on the line and would shrink it.
        spread = [y - (a + b * i) for i, y in enumerate(window) if lo + i not in flagged_at]
        sigma = max(baseline.robust_scale(spread), MIN_SIGMA)
        predicted = a + b * len(window)
        score = (plain[t] - predicted) / sigma
        expected = baseline.from_log(predicted + profile[wd[t]], offset)
        actual = values[t]
        moved = abs(actual - expected) >= MIN_CHANGE * expected if expected > 0 else actual > 0
        flagged = abs(score) >= threshold and moved
        if flagged:
            clean[t] = predicted
            flagged_at.add(t)
        out.append(DayCheck(first_day + timedelta(days=t), actual, expected, score, flagged))
    return out


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive flagged days of one series, one direction."""

    kind: Literal["spike", "drop"]
    days: list[DayCheck]

    @property
    def actual(self) -> float:
        return sum(d.actual for d in self.days)

    @property
    def expected(self) -> float:
        return sum(d.expected for d in self.days)

    @property
    def excess(self) -> float:
        return self.actual - self.expected

    @property
    def peak(self) -> DayCheck:
        return max(self.days, key=lambda d: abs(d.actual - d.expected))


def find_runs(checks: Sequence[DayCheck], *, threshold: float = THRESHOLD) -> list[Run]:
    """Group flagged days into runs; one unflagged day leaning the same way is bridged."""
    runs: list[Run] = []
    i = 0
    while i < len(checks):
        c = checks[i]
        if not c.flagged:
            i += 1
            continue
        sign = 1.0 if c.score > 0 else -1.0
        days = [c]
        j = i + 1
        while j < len(checks):
            nxt = checks[j]
            if nxt.flagged and nxt.score * sign > 0:
                days.append(nxt)
                j += 1
                continue
            after = checks[j + 1] if j + 1 < len(checks) else None
            if (
                not nxt.flagged
                and nxt.score * sign >= threshold / 2
                and after is not None
                and after.flagged
                and after.score * sign > 0
            ):
                days.extend([nxt, after])
                j += 2
                continue
            break
        runs.append(Run("spike" if sign > 0 else "drop", days))
        i = j
    return runs


# ----------------------------------------------------------------------------- answer model


class Anomaly(BaseModel):
    series: str = Field(description='A group of the view (its grouping value), or "Total" for the whole view.')
    kind: Literal["spike", "drop"]
    first_day: date
    last_day: date
    days: int
    actual: Money = Field(description="Cost over these days.")
    expected: Money = Field(description="What the series' own normal predicted over these days.")
    excess: Money = Field(description="actual - expected (negative for a drop).")
    ratio: float | None = Field(description="actual / expected (null when nothing was expected).")
    peak_day: date
    peak_actual: Money
    peak_expected: Money
    score: float = Field(
        description=f"Largest departure in robust standard deviations (flagged at {THRESHOLD:g})."
    )
    share_of_view_change_pct: Pct | None = Field(
        default=None,
        description="How much of the view's own change on THIS anomaly's days it accounts for: its excess as a "
        "percentage of the view's excess over expected on the same days (the view's actual minus the sum of "
        "every series' expected cost, those days only). 0-100: capped at 100 when other series moved the "
        "other way that day; null when the view as a whole moved the other way, and for the view's own "
        "anomalies. Anomalies on different days do not add up; explained_pct is the whole range's figure.",
    )
    ongoing: bool = Field(description="True when it runs through the last day checked.")


class NextStep(BaseModel):
    """A call to make next, ready to send as it is."""

    tool: str
    arguments: dict[str, Any] = Field(description="The call's arguments, exactly as the tool takes them.")
    why: str = Field(description="What it shows.")


class AnomalyAnswer(Envelope):
    view: ViewRef
    cost_type: str
    currency: str
    first_day: date = Field(description="First day checked.")
    last_day: date = Field(description="Last day checked (complete days only).")
    days: int
    history_first_day: date = Field(description="Normal is learned from this day on.")
    method: str
    view_actual: Money = Field(description="The view's Total over the checked days.")
    view_expected: Money = Field(
        description="The view's normal over the checked days: the sum of every series' own expected cost (plus "
        "that of any cost no series covers)."
    )
    view_excess: Money = Field(description="view_actual - view_expected: how far the whole view ran above normal.")
    explained_pct: Pct | None = Field(
        default=None,
        description="How much of view_excess the series anomalies account for: the net excess of all of them "
        "(at or above min_excess, listed or not) as a percentage of view_excess over the whole checked range. "
        "0-100: capped at 100 when the rest of the view ran under its normal (the notes give the dollars); null "
        "when view_excess is about zero or the anomalies moved the other way.",
    )
    view_anomalies: list[Anomaly] = Field(description="Runs of days when the view's Total itself departed.")
    anomalies: list[Anomaly] = Field(description="Per series, largest |excess| first.")
    anomaly_count: int = Field(description="Series anomalies at or above min_excess (listed or not).")
    truncated: bool
    left_out_small: int = Field(description="Series anomalies under min_excess, left out.")
    min_excess: Money
    series_checked: int
    next_steps: list[NextStep] = Field(
        description="Calls that explain the largest anomaly, with their arguments ready to send."
    )


# ----------------------------------------------------------------------------- shaping


def _dense(daily: dict[date, float], fetched: DateSpan) -> list[float]:
    return [daily.get(d, 0.0) for d in baseline.day_range(fetched.first, fetched.days)]


def _anomaly(series: str, run: Run, last_checked: date, view_excess: dict[date, float] | None) -> Anomaly:
    first, last = run.days[0].day, run.days[-1].day
    expected = run.expected
    share: float | None = None
    if view_excess is not None:
        same_days = sum(view_excess.get(d.day, 0.0) for d in run.days)
        if abs(same_days) >= 0.01 and same_days * run.excess > 0:
            share = min(run.excess / same_days, 1.0) * 100.0
    peak = run.peak
    return Anomaly(
        series=series,
        kind=run.kind,
        first_day=first,
        last_day=last,
        days=(last - first).days + 1,
        actual=run.actual,
        expected=expected,
        excess=run.excess,
        ratio=round(run.actual / expected, 2) if expected > 0 else None,
        peak_day=peak.day,
        peak_actual=peak.actual,
        peak_expected=peak.expected,
        score=round(max(abs(d.score) for d in run.days), 1),
        share_of_view_change_pct=share,
        ongoing=last == last_checked,
    )


def next_steps(
    view: View,
    top: Anomaly | None,
    min_excess: float,
    where: SeriesKey | None = None,
    breakdown: Sequence[MegabillKey] = (),
) -> list[NextStep]:
    """What to call next about the largest anomaly ``top``; with ``where`` (the key that selects its series,
    see :mod:`finout_mcp.services.drilldown`) first a ``query_costs`` call that breaks it down by ``breakdown``."""
    if top is None:
        return [
            NextStep(
                tool="find_cost_anomalies",
                arguments={"view": view.id, "period": "last_90_days"},
                why=f"Nothing departed from normal by {min_excess:,.2f} or more here: look further back "
                "(or lower min_excess to see smaller moves).",
            ),
            NextStep(
                tool="query_view_costs",
                arguments={"view": view.id, "compare_previous": True},
                why="How the period compares with the one before.",
            ),
        ]
    s = fence(top.series)
    start, end = (top.first_day - timedelta(days=7)).isoformat(), top.last_day.isoformat()
    steps: list[NextStep] = []
    if where is not None:
        by = ", ".join(fence(f"{k.cost_center}.{k.label}") for k in breakdown)
        steps.append(
            NextStep(
                tool="query_costs",
                arguments={
                    "filter": where.condition,
                    "group_by": [group_name(k.cost_center, k.key) for k in breakdown],
                    "start": start,
                    "end": end,
                    "granularity": "day",
                    "breakdown_series": True,
                },
                why=f"What inside {s} moved{' (by ' + by + ')' if by else ''}, day by day from a week before the "
                f"{top.kind} to its end. {s} is a value of {fence(f'{where.cost_center}.{where.label}')}, the key "
                "this view groups it by (a filter of the view itself is not applied: the view API does not give it).",
            )
        )
    steps.append(
        NextStep(
            tool="query_view_costs",
            arguments={
                "view": view.id,
                "start": start,
                "end": end,
                "granularity": "day",
                "breakdown_series": True,
            },
            why="The day-by-day cost of the view's top series over the same days.",
        )
    )
    steps.append(
        NextStep(
            tool="summarize_savings",
            arguments={},
            why="CostGuard's savings across every scan, largest first; get_scan_recommendations on one scan "
            "narrows them to the same service or account.",
        )
    )
    return steps


def set_next_steps(answer: AnomalyAnswer, steps: list[NextStep], *, top_n: int, notes: Sequence[str] = ()) -> None:
    """Replace ``answer``'s next steps (and add ``notes``), keeping the answer within its size."""
    answer.next_steps = steps
    answer.notes.extend(notes)
    _fit(answer, top_n)


def _fit(answer: AnomalyAnswer, top_n: int) -> None:
    """Halve the listed anomalies until the default answer fits :data:`ANSWER_BUDGET_BYTES`."""
    while (
        top_n <= DEFAULT_TOP_N
        and len(answer.model_dump_json(exclude_none=True).encode()) > ANSWER_BUDGET_BYTES
        and len(answer.anomalies) > 1
    ):
        answer.anomalies = answer.anomalies[: len(answer.anomalies) // 2]
        answer.truncated = True
        answer.notes.append(
            f"Cut to the {len(answer.anomalies)} largest anomalies to keep the answer under 8 KB; raise top_n "
            f"(up to 50; a larger answer), narrow the range or raise min_excess to see the rest."
        )


def find_anomalies(
    series: Sequence[SeriesLike],
    *,
    span: DateSpan,
    fetched: DateSpan,
    view: View,
    cost_type: str,
    min_excess: float | None = None,
    top_n: int = DEFAULT_TOP_N,
    currency: str = "USD",
    notes: Sequence[str] = (),
) -> AnomalyAnswer:
    """The anomalies of ``view`` within ``span``, learned over ``fetched`` (which ends with ``span``)."""
    total_daily, group_daily = daily_table(series, fetched)
    total_values = _dense(total_daily, fetched)
    mean_daily = sum(total_values) / len(total_values) if total_values else 0.0
    threshold = max(SMALL_SHARE * mean_daily, 1.0) if min_excess is None else max(min_excess, 0.0)
    out_notes = list(notes)

    total_checks = [c for c in check_days(total_values, fetched.first) if c.day >= span.first]
    view_runs = [_anomaly("Total", r, span.last, None) for r in find_runs(total_checks)]

    # The view's normal is the sum of its series' normals (plus that of any cost no series covers),
    # so a series' spike is measured against the same expectations the view's change is.
    per_series = {
        name: [c for c in check_days(_dense(daily, fetched), fetched.first) if c.day >= span.first]
        for name, daily in group_daily.items()
    }
    uncovered = [
        t - sum(d.get(day, 0.0) for d in group_daily.values())
        for t, day in zip(total_values, baseline.day_range(fetched.first, fetched.days), strict=True)
    ]
    view_expected_by_day: dict[date, float] = {}
    if group_daily and any(abs(u) >= 0.01 for u in uncovered):
        per_series_rest = [c for c in check_days(uncovered, fetched.first) if c.day >= span.first]
    else:
        per_series_rest = []
    for checks in (*per_series.values(), per_series_rest) if group_daily else (total_checks,):
        for c in checks:
            view_expected_by_day[c.day] = view_expected_by_day.get(c.day, 0.0) + c.expected
    view_actual = sum(c.actual for c in total_checks)
    view_expected = sum(view_expected_by_day.get(c.day, 0.0) for c in total_checks)
    view_excess_by_day = {c.day: c.actual - view_expected_by_day.get(c.day, 0.0) for c in total_checks}

    found: list[Anomaly] = []
    small = 0
    for name, checks in per_series.items():
        for run in find_runs(checks):
            if abs(run.excess) < threshold:
                small += 1
                continue
            found.append(_anomaly(name, run, span.last, view_excess_by_day))
    found.sort(key=lambda a: (-abs(a.excess), a.series, a.first_day))
    top_n = max(1, top_n)
    view_excess = view_actual - view_expected
    listed = sum(a.excess for a in found)
    explained = (
        min(listed / view_excess, 1.0) * 100.0 if abs(view_excess) >= 0.01 and listed * view_excess > 0 else None
    )

    answer = AnomalyAnswer(
        view=ViewRef(id=view.id, name=view.name),
        cost_type=cost_type,
        currency=currency,
        first_day=span.first,
        last_day=span.last,
        days=span.days,
        history_first_day=fetched.first,
        method=METHOD,
        view_actual=view_actual,
        view_expected=view_expected,
        view_excess=view_excess,
        explained_pct=explained,
        view_anomalies=view_runs,
        anomalies=found[:top_n],
        anomaly_count=len(found),
        truncated=len(found) > top_n,
        left_out_small=small,
        min_excess=threshold,
        series_checked=len(group_daily),
        next_steps=next_steps(view, found[0] if found else None, threshold),
    )
    if not group_daily:
        out_notes.append("The view returned no per-group series; only its Total was checked.")
    if fetched.days <= WINDOW_DAYS:
        out_notes.append("Too little history to learn what is normal; nothing was checked.")
    if answer.truncated:
        out_notes.append(
            f"Showing the {len(answer.anomalies)} largest of {len(found)} anomalies; raise top_n to see more."
        )
    if found:
        out_notes.append(
            "share_of_view_change_pct: how much of the view's change on that anomaly's own days it accounts for "
            "(0-100; anomalies on different days do not add up). explained_pct: how much of the view's excess "
            "over the whole range all the anomalies account for."
        )
    if explained is not None and abs(listed) > abs(view_excess):
        out_notes.append(
            f"The anomalies add up to {listed:,.2f} {currency}, more than the view's excess of {view_excess:,.2f}: "
            f"the rest of the view ran {abs(listed - view_excess):,.2f} {'under' if view_excess > 0 else 'over'} "
            "its normal, so explained_pct is capped at 100."
        )
    if small:
        out_notes.append(
            f"{small} smaller anomalies (each under {threshold:,.2f} {currency}) left out; lower min_excess to see them."
        )
    answer.notes = out_notes
    _fit(answer, top_n)
    return answer
