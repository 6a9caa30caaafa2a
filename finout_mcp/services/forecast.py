"""Cost forecasts: this month's projected total and the next months, per view and per top series.

Flow used by ``forecast_costs``::

    months = month_spans(today, horizon)              # this month + ``horizon`` months after it
    fetched = history_span(today)                     # HISTORY_DAYS complete days before today
    series = await costs.fetch_costs(api, view.id, fetched, cost_type)
    answer = forecast_view(series, fetched=fetched, today=today, months=months, view=view, ...)

Method (``services/baseline.py``): on log daily cost over the last :data:`FIT_DAYS` complete days,
remove the weekday effects, take the slope of Tukey's resistant line through them and the level
where the last :data:`LEVEL_DAYS` days sit around that slope (so a step in cost counts within
weeks), and extrapolate day by day with the weekday effects put back; a month's total is its complete days' actual cost plus the forecast of
the rest (today included: today's costs are still coming in). Medians make a spike in the fitted
days count as one odd day, not a new level.

The interval comes from the method's own record on the same series: it is re-run from the same
day of each earlier month (as far as the fetched history allows), and the spread of its relative
errors for the same month offset gives the range (:data:`INTERVAL` coverage, normal quantile of the
root-mean-square error). The naive baseline, "run rate", is the average of the last 30 complete
days times the days left; it is reported beside the forecast, and on the same past origins.

What the figures mean is said in the notes (the model reads them; output field descriptions do not reach
it): the track record in words, last year's same months (the method has no yearly seasonality), the
largest recent spike when it is wider than the interval, and why a month is forecast lower than the
one before (actual days off normal, fewer days, weekday mix, trend: dollars that add up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import NormalDist, median

from pydantic import BaseModel, Field

from finout_mcp.api.models import View
from finout_mcp.services import anomalies, baseline
from finout_mcp.services.costs import SeriesLike, ViewRef, daily_table
from finout_mcp.services.errors import InputError
from finout_mcp.services.fencing import fence
from finout_mcp.services.figures import ANSWER_BUDGET_BYTES, Money, Pct
from finout_mcp.services.periods import DateSpan, add_months, month_end
from finout_mcp.services.results import Envelope

HISTORY_DAYS = 450  # five 90-day windows: fetched in one round of the 5-request cap
FIT_DAYS = 182  # the trend is fitted on the last 26 weeks
LEVEL_DAYS = 28  # and its level on the last 4
RUN_RATE_DAYS = 30
MAX_HORIZON = 3
MIN_FIT_DAYS = 28
MIN_PAST_ORIGINS = 3  # fewer past forecasts than this: no interval is given
INTERVAL = 0.8
Z_INTERVAL = NormalDist().inv_cdf(0.5 + INTERVAL / 2)  # 1.2816 for 80%
MIN_HALF_WIDTH = 0.005  # an interval is never narrower than +-0.5%

METHOD = (
    f"seasonal trend: weekday profile + resistant trend line on log daily cost over the last {FIT_DAYS} "
    "complete days, extrapolated day by day and summed per month (complete days of this month are actual). "
    f"{INTERVAL:.0%} interval from this series' own forecast errors at the same day of earlier months."
)


# ----------------------------------------------------------------------------- dates


def month_span(first: date) -> DateSpan:
    """The calendar month starting ``first``."""
    return DateSpan(first, month_end(first))


def month_spans(today: date, horizon: int) -> list[DateSpan]:
    """This calendar month and the ``horizon`` months after it."""
    if not 0 <= horizon <= MAX_HORIZON:
        raise InputError(
            f"horizon={horizon} is out of range.",
            hint=f"Forecast 1 to {MAX_HORIZON} months after this one (horizon=0: this month only). "
            "Further ahead the method's error is too large to be useful: use a budget or a trend instead.",
        )
    this_month = today.replace(day=1)
    return [month_span(add_months(this_month, k)) for k in range(horizon + 1)]


def history_span(today: date, days: int = HISTORY_DAYS) -> DateSpan:
    """The ``days`` complete days before ``today``."""
    return DateSpan(today - timedelta(days=days), today - timedelta(days=1))


# ----------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class DailyModel:
    """log(cost + offset) = intercept + slope * (day - origin) + profile[weekday]."""

    origin: date  # the first fitted day
    offset: float
    intercept: float
    slope: float
    profile: tuple[float, ...]

    def predict(self, day: date, *, trend_at: date | None = None) -> float:
        """The day's cost; with ``trend_at``, at the trend's level of that day (weekday effect of ``day``)."""
        x = ((trend_at or day) - self.origin).days
        return baseline.from_log(self.intercept + self.slope * x + self.profile[day.weekday()], self.offset)

    @property
    def monthly_trend(self) -> float:
        """The trend's change over an average month (30.44 days), as a ratio - 1."""
        return math.exp(self.slope * 30.44) - 1


def fit(values: Sequence[float], first_day: date) -> DailyModel:
    """Fit :class:`DailyModel` to consecutive daily ``values`` starting at ``first_day``."""
    offset = baseline.log_offset(values)
    logs = baseline.to_log(values, offset)
    wd = baseline.weekdays(first_day, len(values))
    profile = baseline.weekday_profile(logs, wd)
    plain = [x - profile[w] for x, w in zip(logs, wd, strict=True)]
    _, slope = baseline.resistant_line(plain)
    # The level is where the last LEVEL_DAYS sit around that slope: a step in cost (a migration, a
    # commitment bought) moves the forecast within weeks instead of after half the fitted window.
    first_recent = max(len(plain) - LEVEL_DAYS, 0)
    intercept = median([y - slope * x for x, y in enumerate(plain) if x >= first_recent])
    return DailyModel(first_day, offset, intercept, slope, tuple(profile))


@dataclass(frozen=True, slots=True)
class DailyHistory:
    """Consecutive daily costs from ``first_day`` (missing days are 0)."""

    first_day: date
    values: list[float]

    def index(self, day: date) -> int:
        return (day - self.first_day).days

    def between(self, first: date, last: date) -> list[float]:
        lo, hi = max(self.index(first), 0), min(self.index(last), len(self.values) - 1)
        return self.values[lo : hi + 1] if hi >= lo else []


def model_at(history: DailyHistory, as_of: date) -> DailyModel:
    """The model fitted on the :data:`FIT_DAYS` complete days before ``as_of``."""
    fit_first = max(as_of - timedelta(days=FIT_DAYS), history.first_day)
    return fit(history.between(fit_first, as_of - timedelta(days=1)), fit_first)


def month_totals(history: DailyHistory, as_of: date, months: Sequence[DateSpan]) -> list[float]:
    """Each month's total as the method sees it on ``as_of``: actual before it, forecast from it."""
    model = model_at(history, as_of)
    out = []
    for m in months:
        known = sum(history.between(m.first, min(m.last, as_of - timedelta(days=1))))
        d, rest = max(m.first, as_of), 0.0
        while d <= m.last:
            rest += model.predict(d)
            d += timedelta(days=1)
        out.append(known + rest)
    return out


def run_rate_totals(history: DailyHistory, as_of: date, months: Sequence[DateSpan]) -> list[float]:
    """The naive baseline: actual before ``as_of``, then the last 30 complete days' average per day."""
    recent = history.between(as_of - timedelta(days=RUN_RATE_DAYS), as_of - timedelta(days=1))
    rate = sum(recent) / len(recent) if recent else 0.0
    out = []
    for m in months:
        known = sum(history.between(m.first, min(m.last, as_of - timedelta(days=1))))
        remaining = max((m.last - max(m.first, as_of)).days + 1, 0)
        out.append(known + rate * remaining)
    return out


@dataclass(frozen=True, slots=True)
class PastErrors:
    """Relative errors (forecast / actual - 1) at earlier origins, by month offset (0 = origin's month)."""

    method: list[list[float]]
    run_rate: list[list[float]]
    origin_days: list[date]  # the origins re-run from, latest first

    @property
    def origins(self) -> int:
        return len(self.method[0]) if self.method else 0


def past_origins(history: DailyHistory, as_of: date) -> list[date]:
    """The same day of each earlier month (clamped to the month's length) with FIT_DAYS of history before."""
    out: list[date] = []
    k = 1
    while True:
        first = add_months(as_of.replace(day=1), -k)
        origin = first.replace(day=min(as_of.day, month_span(first).days))
        if (origin - history.first_day).days < FIT_DAYS:
            return out
        out.append(origin)
        k += 1


def past_errors(history: DailyHistory, as_of: date, horizon: int) -> PastErrors:
    """How the method and the run rate did from :func:`past_origins`, for month offsets 0..horizon."""
    method: list[list[float]] = [[] for _ in range(horizon + 1)]
    naive: list[list[float]] = [[] for _ in range(horizon + 1)]
    used: list[date] = []
    for origin in past_origins(history, as_of):
        months = [month_span(add_months(origin.replace(day=1), k)) for k in range(horizon + 1)]
        months = [m for m in months if m.last < as_of]  # only months whose actual cost is known
        if not months:
            continue
        actual = [sum(history.between(m.first, m.last)) for m in months]
        for k, (f, r, a) in enumerate(
            zip(
                month_totals(history, origin, months),
                run_rate_totals(history, origin, months),
                actual,
                strict=True,
            )
        ):
            if a > 0:
                method[k].append(f / a - 1)
                naive[k].append(r / a - 1)
                if k == 0:
                    used.append(origin)
    return PastErrors(method, naive, used)


def _rms(errors: Sequence[float]) -> float:
    return math.sqrt(sum(e * e for e in errors) / len(errors))


def _mape(errors: Sequence[float]) -> float:
    return sum(abs(e) for e in errors) / len(errors) * 100.0


# ----------------------------------------------------------------------------- answer model


class MonthForecast(BaseModel):
    month: str = Field(description='Calendar month, "2026-12".')
    days: int
    actual_to_date: Money | None = Field(
        default=None, description="This month only: actual cost of its complete days so far."
    )
    forecast: Money = Field(description="Projected total for the whole month.")
    low: Money | None = Field(default=None, description=f"{INTERVAL:.0%} interval, lower end.")
    high: Money | None = Field(default=None, description=f"{INTERVAL:.0%} interval, upper end.")
    run_rate: Money = Field(description="Naive baseline: the last 30 complete days' daily average x days left.")


class SeriesForecast(BaseModel):
    name: str
    last_30_days: Money
    months: list[MonthForecast]


class MonthsAhead(BaseModel):
    """The track record for one distance: the month of the origin (0), the month after (1), ..."""

    months_ahead: int = Field(description="0: the origin's own month (partly actual then); 1: the month after...")
    origins: int = Field(description="Past origins whose month this far ahead is complete, so can be scored.")
    method_error_pct: Pct = Field(description="Mean absolute % error of the method's month totals.")
    run_rate_error_pct: Pct = Field(description="The same for the naive run rate.")
    interval_pct: Pct | None = Field(
        default=None,
        description=f"The {INTERVAL:.0%} interval's half-width this gives, % of the forecast: {Z_INTERVAL:.2f} x the "
        f"root-mean-square error, at least {MIN_HALF_WIDTH:.1%} (null: fewer than {MIN_PAST_ORIGINS} origins).",
    )


class TrackRecord(BaseModel):
    """How the method did on this view's own past: re-run from the same day of earlier months, each time on
    the history before that day only, and compared with what those months then cost."""

    origins: int = Field(
        description=f"Past origins: the same day of each earlier month with {FIT_DAYS} days of history before it."
    )
    first_origin: date | None = None
    last_origin: date | None = None
    method_error_pct: Pct = Field(
        description="Mean absolute percentage error of the method's month totals from those origins, over this "
        "month and every month ahead up to horizon (by_months_ahead splits it)."
    )
    run_rate_error_pct: Pct = Field(description="The same for the naive run rate.")
    by_months_ahead: list[MonthsAhead] = Field(default_factory=list)


class ForecastAnswer(Envelope):
    view: ViewRef
    cost_type: str
    currency: str
    as_of: date = Field(description="Today (UTC): complete days before it are actual, it and later are forecast.")
    history_first_day: date
    history_last_day: date
    method: str
    months: list[MonthForecast] = Field(description="The view's Total: this month, then the next ones.")
    series: list[SeriesForecast] = Field(description="The top series by their last 30 days.")
    series_count: int
    track_record: TrackRecord | None = None


# ----------------------------------------------------------------------------- shaping


def _forecast_rows(
    history: DailyHistory, today: date, months: Sequence[DateSpan], errors: PastErrors | None
) -> list[MonthForecast]:
    point = month_totals(history, today, months)
    naive = run_rate_totals(history, today, months)
    rows = []
    for k, (m, f, r) in enumerate(zip(months, point, naive, strict=True)):
        low = high = None
        if errors is not None and len(errors.method[k]) >= MIN_PAST_ORIGINS:
            known = sum(history.between(m.first, min(m.last, today - timedelta(days=1))))
            half = max(Z_INTERVAL * _rms(errors.method[k]), MIN_HALF_WIDTH) * f
            low, high = max(f - half, known), f + half
        rows.append(
            MonthForecast(
                month=f"{m.first.year:04d}-{m.first.month:02d}",
                days=m.days,
                actual_to_date=sum(history.between(m.first, today - timedelta(days=1))) if k == 0 else None,
                forecast=f,
                low=low,
                high=high,
                run_rate=r,
            )
        )
    return rows


def forecast_view(
    series: Sequence[SeriesLike],
    *,
    fetched: DateSpan,
    today: date,
    months: Sequence[DateSpan],
    view: View,
    cost_type: str,
    top_n: int = 5,
    currency: str = "USD",
) -> ForecastAnswer:
    """Forecasts of ``view``'s Total and top ``top_n`` series for ``months``, from the ``fetched`` history."""
    total_daily, group_daily = daily_table(series, fetched)
    days = baseline.day_range(fetched.first, fetched.days)
    # Leading days without any cost: the account (or view) did not exist yet.
    start = next((i for i, d in enumerate(days) if abs(total_daily.get(d, 0.0)) > 0), len(days))
    if fetched.days - start < MIN_FIT_DAYS:
        raise InputError(
            f"The view {fence(view.name)} has {fetched.days - start} days of cost history; a forecast needs at least "
            f"{MIN_FIT_DAYS}.",
            hint='Until then, query_view_costs(period="month_to_date") gives this month\'s spend so far.',
        )
    first = days[start]
    horizon = len(months) - 1

    def history(daily: dict[date, float]) -> DailyHistory:
        return DailyHistory(first, [daily.get(d, 0.0) for d in days[start:]])

    total = history(total_daily)
    errors = past_errors(total, today, horizon)
    notes: list[str] = []
    track = track_record(errors)
    if track is not None:
        notes.append(track_note(track))
    if errors.origins < MIN_PAST_ORIGINS:
        notes.append(
            f"Only {errors.origins} earlier months to measure the method's error on: no interval is given "
            "(it needs about four months of history)."
        )

    recent = {
        name: sum(v for d, v in daily.items() if d > fetched.last - timedelta(days=RUN_RATE_DAYS))
        for name, daily in group_daily.items()
    }
    ranked = sorted(recent, key=lambda n: (-recent[n], n))[: max(top_n, 0)]
    rows = []
    for name in ranked:
        h = history(group_daily[name])
        rows.append(
            SeriesForecast(
                name=name,
                last_30_days=recent[name],
                months=_forecast_rows(h, today, months, past_errors(h, today, horizon)),
            )
        )
    if len(group_daily) > len(ranked):
        notes.append(
            f"Forecasts for the top {len(ranked)} of {len(group_daily)} series (by their last 30 days); raise top_n for "
            "more. Series forecasts are made separately, so they need not add up to the view's."
        )
    if horizon < MAX_HORIZON:
        notes.append(f"horizon={MAX_HORIZON} forecasts up to {MAX_HORIZON} months after this one.")
    notes.append(
        "No yearly seasonality, commitments, price changes or planned launches are modelled: the forecast "
        f"continues the last {FIT_DAYS} days' trend and weekly pattern."
    )
    totals = _forecast_rows(total, today, months, errors)
    points = [row.forecast for row in totals]
    notes.extend(
        note
        for note in (
            last_year_note(total, months, points),
            spike_note(total, today, totals),
            *lower_month_notes(total, today, months, points),
        )
        if note
    )
    answer = ForecastAnswer(
        view=ViewRef(id=view.id, name=view.name),
        cost_type=cost_type,
        currency=currency,
        as_of=today,
        history_first_day=first,
        history_last_day=fetched.last,
        method=METHOD,
        months=totals,
        series=rows,
        series_count=len(group_daily),
        track_record=track,
        notes=notes,
    )
    while len(answer.model_dump_json(exclude_none=True).encode()) > ANSWER_BUDGET_BYTES and answer.series:
        answer.series = answer.series[:-1]
        answer.notes.append(f"Cut to {len(answer.series)} series to keep the answer under 8 KB.")
    return answer


# ----------------------------------------------------------------------------- what the figures mean


def track_record(errors: PastErrors) -> TrackRecord | None:
    """The method's record from the past origins, overall and per distance; None when there is none."""
    flat_m = [e for ks in errors.method for e in ks]
    if not flat_m:
        return None
    flat_r = [e for ks in errors.run_rate for e in ks]
    ahead = [
        MonthsAhead(
            months_ahead=k,
            origins=len(m),
            method_error_pct=_mape(m),
            run_rate_error_pct=_mape(r),
            interval_pct=max(Z_INTERVAL * _rms(m), MIN_HALF_WIDTH) * 100.0 if len(m) >= MIN_PAST_ORIGINS else None,
        )
        for k, (m, r) in enumerate(zip(errors.method, errors.run_rate, strict=True))
        if m
    ]
    return TrackRecord(
        origins=errors.origins,
        first_origin=errors.origin_days[-1] if errors.origin_days else None,
        last_origin=errors.origin_days[0] if errors.origin_days else None,
        method_error_pct=_mape(flat_m),
        run_rate_error_pct=_mape(flat_r),
        by_months_ahead=ahead,
    )


def _ahead(k: int) -> str:
    return "this month" if k == 0 else f"{k} month{'s' if k > 1 else ''} ahead"


def track_note(track: TrackRecord) -> str:
    """The track record in words: what error, from how many origins, how far ahead, and the interval from it."""
    span = f" ({track.first_origin}..{track.last_origin})" if track.first_origin and track.last_origin else ""
    per = ", ".join(f"{_ahead(a.months_ahead)} {a.method_error_pct:.1f}%" for a in track.by_months_ahead)
    widths = ", ".join(
        f"±{a.interval_pct:.1f}% {_ahead(a.months_ahead)}"
        for a in track.by_months_ahead
        if a.interval_pct is not None
    )
    text = (
        f"method_error_pct: the method was re-run from the same day of {track.origins} earlier months{span}, each "
        "time on the history before that day only; its month totals were off from what those months then cost by "
        f"{track.method_error_pct:.1f}% on average ({per}); the run rate's by {track.run_rate_error_pct:.1f}%."
    )
    if widths:
        text += (
            f" The {INTERVAL:.0%} interval is ±{Z_INTERVAL:.2f} x the root-mean-square of those errors for the same "
            f"month ahead, at least ±{MIN_HALF_WIDTH:.1%}: {widths}."
        )
    return text


def _label(m: DateSpan) -> str:
    return f"{m.first.year:04d}-{m.first.month:02d}"


def last_year_note(total: DailyHistory, months: Sequence[DateSpan], points: Sequence[float]) -> str | None:
    """How the same months moved last year (month over month), beside this forecast's moves: the method has
    no yearly seasonality, so a reader can weigh what it cannot know. None without a year of history."""
    parts = []
    for k, m in enumerate(months):
        before = month_span(add_months(m.first, -1))
        ly, ly_before = month_span(add_months(m.first, -12)), month_span(add_months(m.first, -13))
        if ly_before.first < total.first_day:
            continue
        a, b = sum(total.between(ly.first, ly.last)), sum(total.between(ly_before.first, ly_before.last))
        previous = points[k - 1] if k > 0 else sum(total.between(before.first, before.last))
        if a <= 0 or b <= 0 or previous <= 0:
            continue
        per_day = (a / ly.days) / (b / ly_before.days) - 1
        parts.append(
            f"{_label(ly)} was {(a / b - 1) * 100:+.1f}% on {_label(ly_before)} ({per_day * 100:+.1f}% per day), "
            f"this forecast has {_label(m)} {(points[k] / previous - 1) * 100:+.1f}% on {_label(before)}"
        )
    if not parts:
        return None
    return "Last year, month on month (the forecast does not carry these moves): " + "; ".join(parts) + "."


RECENT_DAYS = 90  # the departures compared with the interval: those of the last 90 days
SHOWN_EFFECT = 0.0025  # a reason for a lower month is named when it moves it by 0.25% or more


def spike_note(total: DailyHistory, today: date, rows: Sequence[MonthForecast]) -> str | None:
    """A warning when the interval is narrower than the largest departure from normal of the last
    :data:`RECENT_DAYS` days (found as ``find_cost_anomalies`` finds them): one such one-off in a forecast
    month would put it outside. None when no interval is that narrow."""
    n = min(len(total.values), RECENT_DAYS + anomalies.WINDOW_DAYS)
    first = total.first_day + timedelta(days=len(total.values) - n)
    checks = [
        c for c in anomalies.check_days(total.values[-n:], first) if c.day >= today - timedelta(days=RECENT_DAYS)
    ]
    runs = anomalies.find_runs(checks)
    if not runs:
        return None
    big = max(runs, key=lambda r: abs(r.excess))
    narrow = [r for r in rows if r.high is not None and r.high - r.forecast < abs(big.excess)]
    if not narrow:
        return None
    widths = ", ".join(f"±{r.high - r.forecast:,.0f} in {r.month}" for r in narrow if r.high is not None)
    return (
        f"The interval ({widths}) is narrower than the largest departure from normal in the last {RECENT_DAYS} "
        f"days: a {big.kind} of {big.excess:+,.0f} on {big.days[0].day}..{big.days[-1].day} (find_cost_anomalies "
        "explains it). The interval comes from past month-total errors; a one-off like it in a forecast month "
        "would put that month outside."
    )


def lower_month_notes(
    total: DailyHistory, today: date, months: Sequence[DateSpan], points: Sequence[float]
) -> list[str]:
    """Why a month is forecast lower than the one before (the first: than last month's actual), in dollars that
    add up to the difference: actual days off the model's normal (spikes are not repeated), fewer days, the
    weekday mix (more low-cost days), and the trend."""
    model = model_at(total, today)
    last = today - timedelta(days=1)
    previous = month_span(add_months(months[0].first, -1))
    spans = [previous, *months]
    totals = [sum(total.between(previous.first, previous.last)), *points]
    notes = []
    for a, ta, b, tb in zip(spans, totals, spans[1:], totals[1:], strict=False):
        if tb >= ta or ta <= 0 or a.first < total.first_day:  # not lower, or last month not all in the history
            continue

        def modelled(m: DateSpan) -> float:
            return sum(model.predict(d) for d in baseline.day_range(m.first, m.days))

        def at_today(m: DateSpan) -> float:  # the calendar alone: the trend frozen at today's level
            return sum(model.predict(d, trend_at=today) for d in baseline.day_range(m.first, m.days))

        def off_normal(m: DateSpan) -> float:  # actual days above (+) or below the model's normal
            days = [d for d in baseline.day_range(m.first, m.days) if d <= last]
            return (
                sum(total.between(m.first, min(m.last, last))) - sum(model.predict(d) for d in days)
                if days
                else 0.0
            )

        calendar = at_today(b) - at_today(a)
        days_effect = (b.days - a.days) * at_today(a) / a.days
        off_a, off_b = off_normal(a), off_normal(b)
        so_far = f", {_label(b)} so far {off_b:+,.0f}" if b.first <= last else ""
        weekends = (_weekend_days(a), _weekend_days(b))
        mix = f" ({weekends[1]} Saturdays and Sundays vs {weekends[0]})" if weekends[0] != weekends[1] else ""
        effects = [
            (
                off_b - off_a,
                f"actual days off the model's normal ({_label(a)} {off_a:+,.0f}{so_far}: one-offs are "
                "not repeated)",
            ),
            (days_effect, f"{b.days} days vs {a.days}"),
            (calendar - days_effect, f"weekday mix{mix}"),
            ((modelled(b) - modelled(a)) - calendar, f"trend ({model.monthly_trend * 100:+.1f}% a month)"),
        ]
        shown = sorted((e for e in effects if abs(e[0]) >= SHOWN_EFFECT * ta), key=lambda e: e[0])
        notes.append(
            f"{_label(b)} is forecast {(1 - tb / ta) * 100:.1f}% lower than {_label(a)} ({tb - ta:+,.0f}): "
            + "; ".join(f"{value:+,.0f} {why}" for value, why in shown)
            + "."
        )
    return notes


def _weekend_days(m: DateSpan) -> int:
    return sum(1 for d in baseline.day_range(m.first, m.days) if d.weekday() >= 5)
