from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import anyio
import pytest

from finout_mcp.api.models import CostQueryResponse, CostSeries, CostType, View
from finout_mcp.services.costs import fetch_costs, merge_series, shape_costs
from finout_mcp.services.errors import InputError
from finout_mcp.services.periods import (
    PERIODS,
    DateSpan,
    preceding_span,
    resolve_span,
    span_to_ms,
    split_windows,
)
from tests.support import preset_span

TODAY = date(2026, 10, 15)
VIEW = View(id="v1", name="Costs by service")


def ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


def series(name: str, days: dict[date, float]) -> CostSeries:
    return CostSeries.model_validate({"name": name, "data": [{"time": ms(d), "cost": c} for d, c in days.items()]})


def days_of(span: DateSpan) -> list[date]:
    return [span.first + timedelta(days=i) for i in range(span.days)]


def synthetic(span: DateSpan, n_series: int, *, with_total: bool = True, seed: int = 0) -> list[CostSeries]:
    out = []
    totals: dict[date, float] = {}
    for k in range(n_series):
        pts = {}
        for j, d in enumerate(days_of(span)):
            v = (k + 1) * 13.37 + (j * 7 + k * 3 + seed) % 11 * 1.234567
            pts[d] = v
            totals[d] = totals.get(d, 0.0) + v
        out.append(series(f"Amazon Service Number {k:02d} With A Long Name", pts))
    if with_total:
        out.insert(0, series("Total", totals))
    return out


# ----------------------------------------------------------------------------- spans


def test_presets_for_fixed_today() -> None:
    assert preset_span("last_7_days", TODAY) == DateSpan(date(2026, 10, 8), date(2026, 10, 14))
    assert preset_span("last_30_days", TODAY).days == 30
    assert preset_span("last_30_days", TODAY).last == date(2026, 10, 14)
    assert preset_span("last_90_days", TODAY) == DateSpan(date(2026, 7, 17), date(2026, 10, 14))
    assert preset_span("month_to_date", TODAY) == DateSpan(date(2026, 10, 1), TODAY)
    assert preset_span("last_month", TODAY) == DateSpan(date(2026, 9, 1), date(2026, 9, 30))
    assert preset_span("quarter_to_date", TODAY) == DateSpan(date(2026, 10, 1), TODAY)
    assert preset_span("quarter_to_date", date(2026, 8, 20)) == DateSpan(date(2026, 7, 1), date(2026, 8, 20))
    assert preset_span("year_to_date", TODAY) == DateSpan(date(2026, 1, 1), TODAY)
    assert preset_span("last_12_months", TODAY) == DateSpan(date(2025, 10, 1), date(2026, 9, 30))
    assert preset_span("last_year", TODAY) == DateSpan(date(2025, 1, 1), date(2025, 12, 31))
    for p in PERIODS:
        s = preset_span(p, TODAY)
        assert s.first <= s.last <= TODAY


def test_presets_edge_days() -> None:
    first = date(2026, 11, 1)
    assert preset_span("month_to_date", first) == DateSpan(first, first)
    jan = date(2026, 1, 10)
    assert preset_span("last_month", jan) == DateSpan(date(2025, 12, 1), date(2025, 12, 31))
    assert preset_span("last_12_months", jan) == DateSpan(date(2025, 1, 1), date(2025, 12, 31))
    assert preset_span("last_month", date(2024, 3, 31)) == DateSpan(date(2024, 2, 1), date(2024, 2, 29))
    assert preset_span("year_to_date", date(2026, 1, 1)).days == 1
    assert preset_span("quarter_to_date", date(2026, 12, 31)).first == date(2026, 10, 1)


def test_resolve_span_defaults_and_forms() -> None:
    assert resolve_span(period=None, start=None, end=None, today=TODAY) == preset_span("last_30_days", TODAY)
    assert resolve_span(period="", start="", end=None, today=TODAY) == preset_span("last_30_days", TODAY)
    assert resolve_span(period="last_month", today=TODAY).first == date(2026, 9, 1)
    s = resolve_span(start="2026-10-01", end="2026-10-31", today=TODAY)
    assert (s.first, s.last, s.days) == (date(2026, 10, 1), date(2026, 10, 31), 31)
    assert resolve_span(start="2026-10-01", today=TODAY) == DateSpan(date(2026, 10, 1), TODAY)
    assert resolve_span(start=date(2026, 9, 1), end=date(2026, 9, 1), today=TODAY).days == 1
    assert resolve_span(start="2026-09-01T10:00:00Z", end="2026-09-02", today=TODAY).first == date(2026, 9, 1)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"period": "last_month", "start": "2026-01-01"}, "not both"),
        ({"end": "2026-10-01"}, "without start"),
        ({"start": "01/10/2026"}, "not an ISO date"),
        ({"start": "2026-10-10", "end": "2026-10-01"}, "before start"),
        ({"start": "2026-10-20"}, "future"),
        ({"start": "2009-12-31"}, "2010-01-01"),
        ({"start": "2026-01-01", "end": "2028-01-01"}, "more than a year"),
        ({"period": "last_fortnight"}, "Unknown period"),
    ],
)
def test_bad_input_errors_carry_an_example(kwargs: dict[str, str], fragment: str) -> None:
    with pytest.raises(InputError) as ei:
        resolve_span(today=TODAY, **kwargs)
    msg = str(ei.value)
    assert fragment in msg
    assert 'start="2026-09-01", end="2026-09-30"' in msg
    assert 'period="last_month"' in msg


def test_preceding_span() -> None:
    s = DateSpan(date(2026, 10, 1), date(2026, 10, 31))
    p = preceding_span(s)
    assert p == DateSpan(date(2026, 8, 31), date(2026, 9, 30))
    assert p.days == s.days


def test_span_to_ms_boundaries() -> None:
    start, end = span_to_ms(DateSpan(date(2026, 10, 1), date(2026, 10, 31)))
    assert start == int(datetime(2026, 10, 1, tzinfo=UTC).timestamp()) * 1000
    assert end == int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()) * 1000 - 1
    assert datetime.fromtimestamp(end / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S") == "2026-10-31 23:59:59"
    one = span_to_ms(DateSpan(date(2024, 2, 29), date(2024, 2, 29)))
    assert one[1] - one[0] == 86_400_000 - 1


# ----------------------------------------------------------------------------- windows


def check_windows(span: DateSpan, windows: list[DateSpan]) -> None:
    assert windows[0].first == span.first
    assert windows[-1].last == span.last
    for a, b in itertools.pairwise(windows):
        assert b.first == a.last + timedelta(days=1)
    assert all(1 <= w.days <= 90 for w in windows)
    assert sum(w.days for w in windows) == span.days


@pytest.mark.parametrize(
    ("first", "days", "n"),
    [
        (date(2026, 1, 1), 1, 1),
        (date(2026, 1, 1), 90, 1),
        (date(2026, 1, 1), 91, 2),
        (date(2026, 1, 1), 180, 2),
        (date(2026, 1, 1), 181, 3),
        (date(2025, 10, 1), 366, 5),
        (date(2024, 1, 1), 366, 5),  # leap year
        (date(2024, 2, 1), 60, 1),
        (date(2023, 12, 1), 91, 2),
    ],
)
def test_split_windows(first: date, days: int, n: int) -> None:
    span = DateSpan(first, first + timedelta(days=days - 1))
    w = split_windows(span)
    assert len(w) == n
    check_windows(span, w)


def test_split_leap_day_in_window() -> None:
    span = DateSpan(date(2024, 2, 29), date(2024, 5, 28))  # 90 days through the leap day
    assert span.days == 90
    assert split_windows(span) == [span]
    span2 = DateSpan(date(2024, 2, 28), date(2024, 5, 28))
    w = split_windows(span2)
    assert len(w) == 2
    assert w[1] == DateSpan(date(2024, 5, 28), date(2024, 5, 28))


# ----------------------------------------------------------------------------- fetching


class FakeApi:
    """Records calls; every day costs day_index-derived amounts for two services and Total."""

    def __init__(self, delay: float = 0.01, fail_on: int | None = None) -> None:
        self.calls: list[tuple[int, int, str | None]] = []
        self.inflight = 0
        self.max_inflight = 0
        self.delay = delay
        self.fail_on = fail_on

    async def query_costs(
        self,
        view_id: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        cost_type: CostType | None = None,
    ) -> CostQueryResponse:
        assert start_ms is not None and end_ms is not None
        self.calls.append((start_ms, end_ms, cost_type))
        nth = len(self.calls)
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            await anyio.sleep(self.delay)
            if nth == self.fail_on:
                raise RuntimeError("boom")
            data = []
            t = start_ms
            pts_a, pts_b, pts_t = [], [], []
            while t <= end_ms:
                day = t // 86_400_000
                a, b = float(day % 7), float(day % 5) + 0.5
                pts_a.append({"time": t, "cost": a})
                pts_b.append({"time": t, "cost": b})
                pts_t.append({"time": t, "cost": a + b})
                t += 86_400_000
            data = [
                {"name": "Total", "data": pts_t},
                {"name": "EC2", "data": pts_a},
                {"name": "S3", "data": pts_b},
            ]
            return CostQueryResponse.model_validate({"data": data})
        finally:
            self.inflight -= 1


async def test_fetch_costs_windows_merge_and_progress() -> None:
    api = FakeApi()
    span = DateSpan(date(2025, 10, 1), date(2026, 10, 1))  # 366 days → 5 windows
    progress: list[tuple[int, int]] = []

    async def on_window(done: int, total: int) -> None:
        progress.append((done, total))

    merged = await fetch_costs(api, "v1", span, "amortizedCost", on_window=on_window)
    assert len(api.calls) == 5
    assert api.max_inflight == 5  # all windows concurrently (the client caps at 5)
    assert sorted(progress) == [(i, 5) for i in range(1, 6)]
    starts = sorted(c[0] for c in api.calls)
    assert starts[0] == span_to_ms(span)[0]
    assert max(c[1] for c in api.calls) == span_to_ms(span)[1]
    assert {c[2] for c in api.calls} == {"amortizedCost"}

    by_name = {s.name: s for s in merged}
    assert set(by_name) == {"Total", "EC2", "S3"}
    for s in merged:
        times = [p.time for p in s.data]
        assert times == sorted(times) and len(times) == len(set(times)) == 366
    # merged equals the sum of the windows fetched one by one
    expected = 0.0
    for w in split_windows(span):
        a, b = span_to_ms(w)
        resp = await FakeApi(delay=0).query_costs("v1", start_ms=a, end_ms=b)
        expected += sum(p.amount for p in resp.data[0].data)
    assert sum(p.amount for p in by_name["Total"].data) == pytest.approx(expected)


async def test_fetch_costs_error_propagates_unwrapped() -> None:
    api = FakeApi(fail_on=2)
    with pytest.raises(RuntimeError, match="boom"):
        await fetch_costs(api, "v1", DateSpan(date(2026, 1, 1), date(2026, 6, 30)), None)


def test_merge_series_sums_duplicates_and_sorts() -> None:
    d1, d2 = date(2026, 1, 1), date(2026, 1, 2)
    merged = merge_series([[series("A", {d2: 1.0})], [series("A", {d1: 2.0, d2: 3.0}), series("B", {d1: 1.0})]])
    a = merged[0]
    assert a.name == "A" and [(p.time, p.cost) for p in a.data] == [(ms(d1), 2.0), (ms(d2), 4.0)]
    assert merged[1].name == "B"


# ----------------------------------------------------------------------------- shaping


def test_shape_basic_totals_rollup_and_partial() -> None:
    span = DateSpan(date(2026, 10, 1), TODAY)
    data = synthetic(span, 14)
    ans = shape_costs(data, span, today=TODAY, view=VIEW, cost_type="unblendedCost", top_n=5)
    assert ans.partial is True
    assert ans.granularity == "day" and len(ans.timeline) == 15
    assert ans.series_count == 14 and ans.truncated
    assert len(ans.series) == 6 and ans.series[-1].name == "Other (9 series)"
    groups = [s for s in data if s.name != "Total"]
    totals = sorted((sum(p.amount for p in s.data) for s in groups), reverse=True)
    assert ans.series[-1].total == round(sum(totals[5:]), 2)
    assert [r.total for r in ans.series[:5]] == [round(t, 2) for t in totals[:5]]
    assert ans.total == round(sum(totals), 2)
    assert ans.reconciliation_note is None
    assert sum(r.share_pct or 0 for r in ans.series) == pytest.approx(100, abs=0.1)
    assert any("raise top_n to 14" in n.lower() for n in ans.notes)
    assert any("incomplete" in n for n in ans.notes)
    assert sum(t.total for t in ans.timeline) == pytest.approx(ans.total, abs=0.1)


def test_shape_not_partial_and_no_total_series() -> None:
    span = DateSpan(date(2026, 9, 1), date(2026, 9, 30))
    data = synthetic(span, 3, with_total=False)
    ans = shape_costs(data, span, today=TODAY, view=VIEW, cost_type="unblendedCost")
    assert ans.partial is False
    assert ans.truncated is False and len(ans.series) == 3
    assert ans.total == ans.sum_of_series
    assert not any("incomplete" in n for n in ans.notes)


def test_reconciliation_note() -> None:
    span = DateSpan(date(2026, 9, 1), date(2026, 9, 2))
    d1, d2 = span.first, span.last
    data = [series("Total", {d1: 100.0, d2: 100.0}), series("A", {d1: 60.0, d2: 60.0}), series("B", {d1: 30.0})]
    ans = shape_costs(data, span, today=TODAY, view=VIEW, cost_type="unblendedCost")
    assert ans.total == 200 and ans.sum_of_series == 150
    assert ans.reconciliation_note is not None and "50.00" in ans.reconciliation_note


def test_points_outside_span_ignored_and_rounding_at_end() -> None:
    span = DateSpan(date(2026, 9, 1), date(2026, 9, 3))
    pts = {span.first + timedelta(days=i): 0.004 for i in range(3)}
    pts[date(2026, 8, 31)] = 1000.0
    ans = shape_costs([series("A", pts)], span, today=TODAY, view=VIEW, cost_type="x")
    assert ans.total == 0.01  # 0.012 unrounded, not 3 × round(0.004)
    assert [t.total for t in ans.timeline] == [0.0, 0.0, 0.0]


def test_granularity_auto_and_labels() -> None:
    s31 = DateSpan(date(2026, 1, 1), date(2026, 1, 31))
    s120 = DateSpan(date(2026, 1, 1), date(2026, 4, 30))
    s121 = DateSpan(date(2026, 1, 1), date(2026, 5, 1))
    for span, g, first_label in (
        (s31, "day", "2026-01-01"),
        (s120, "week", "2026-W01"),
        (s121, "month", "2026-01"),
    ):
        ans = shape_costs(synthetic(span, 2), span, today=TODAY, view=VIEW, cost_type="x")
        assert ans.granularity == g
        assert ans.timeline[0].period == first_label
        assert sum(t.total for t in ans.timeline) == pytest.approx(ans.total, abs=0.05)
    ans = shape_costs(synthetic(s31, 2), s31, today=TODAY, view=VIEW, cost_type="x", granularity="total")
    assert len(ans.timeline) == 1 and ans.timeline[0].period == "2026-01-01..2026-01-31"


def test_comparison_with_previous_period() -> None:
    span = DateSpan(date(2026, 9, 1), date(2026, 9, 2))
    prev = preceding_span(span)
    cur = [series("A", {span.first: 150.0}), series("New", {span.first: 10.0})]
    old = [series("A", {prev.first: 100.0}), series("Gone", {prev.first: 5.0})]
    ans = shape_costs(cur, span, today=TODAY, view=VIEW, cost_type="x", previous=old, previous_window=prev)
    assert ans.previous_total == 105 and ans.change_abs == 55 and ans.change_pct == pytest.approx(52.4)
    a = next(r for r in ans.series if r.name == "A")
    assert (a.previous_total, a.change_abs, a.change_pct) == (100, 50, 50.0)
    new = next(r for r in ans.series if r.name == "New")
    assert new.change_pct is None and new.previous_total == 0
    assert any("New this period" in n and "New" in n for n in ans.notes)
    assert any("Gone" in n for n in ans.notes)
    assert ans.previous_first_day == prev.first


def test_breakdown_series() -> None:
    span = DateSpan(date(2026, 9, 1), date(2026, 9, 10))
    ans = shape_costs(synthetic(span, 12), span, today=TODAY, view=VIEW, cost_type="x", breakdown_series=True)
    row = ans.timeline[0]
    assert row.top is not None and len(row.top) == 10
    assert set(row.top) <= {r.name for r in ans.series}


@pytest.mark.parametrize("days", [1, 7, 31, 60, 90, 120, 121, 200, 366])
@pytest.mark.parametrize("breakdown", [False, True])
def test_answer_size_within_8kb(days: int, breakdown: bool) -> None:
    span = DateSpan(date(2025, 10, 1), date(2025, 10, 1) + timedelta(days=days - 1))
    prev = preceding_span(span)
    ans = shape_costs(
        synthetic(span, 40),
        span,
        today=TODAY,
        view=VIEW,
        cost_type="amortizedCost",
        breakdown_series=breakdown,
        previous=synthetic(prev, 40, seed=3),
        previous_window=prev,
    )
    size = len(ans.model_dump_json(exclude_none=True))
    assert size <= 8 * 1024, size
    assert ans.series_count == 40 and len(ans.series) == 11


def test_size_guard_coarsens_explicit_day_granularity() -> None:
    span = DateSpan(date(2025, 10, 1), date(2026, 9, 30))
    ans = shape_costs(
        synthetic(span, 40), span, today=TODAY, view=VIEW, cost_type="x", granularity="day", breakdown_series=True
    )
    assert len(ans.model_dump_json(exclude_none=True)) <= 8 * 1024
    assert any("keep the answer small" in n for n in ans.notes)
