"""find_cost_anomalies: the detector on series built by hand, and the spike question end to end.

Expected figures come from the series built here or from the sandbox's own daily costs and its
table of planted spikes (``finout_mcp.sandbox.spikes``), never from a tool's answer.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from finout_mcp.api.models import View
from finout_mcp.sandbox import Fault, Sandbox
from finout_mcp.sandbox.costs import day_ms
from finout_mcp.sandbox.spikes import PlantedSpike
from finout_mcp.services import anomalies, drilldown
from finout_mcp.services.costs import Point, Series
from finout_mcp.services.errors import InputError
from finout_mcp.services.periods import DateSpan
from tests.support import TODAY, call, call_error, demo, text

# 56 days of history, then the 30 days checked (2026-10-31 .. 2026-11-29), as for period=last_30_days
# on 2026-11-30.
CHECKED = DateSpan(date(2026, 10, 31), date(2026, 11, 29))
FETCHED = anomalies.history_span(CHECKED)
VIEW = View(id="v1", name="Hand-built")


def days() -> list[date]:
    return [FETCHED.first + timedelta(days=i) for i in range(FETCHED.days)]


def view_of(**groups: list[float]) -> list[Series]:
    """A view answer: a Total and one series per group, one value per fetched day."""
    total = [sum(vals) for vals in zip(*groups.values(), strict=True)]
    out = [Series("Total", [Point(day_ms(d), v) for d, v in zip(days(), total, strict=True)])]
    out += [
        Series(name, [Point(day_ms(d), v) for d, v in zip(days(), vals, strict=True)])
        for name, vals in groups.items()
    ]
    return out


def planted(base: list[float], spike: PlantedSpike) -> list[float]:
    return [
        v * (spike.factor if spike.first_day <= d <= spike.last_day else 1.0)
        for d, v in zip(days(), base, strict=True)
    ]


def find(series: list[Series], **kw: float) -> anomalies.AnomalyAnswer:
    return anomalies.find_anomalies(
        series, span=CHECKED, fetched=FETCHED, view=VIEW, cost_type="unblendedCost", **kw
    )  # type: ignore[arg-type]


def test_a_flat_series_spike_is_found_with_its_exact_dates_and_dollars() -> None:
    spike = PlantedSpike("api", date(2026, 11, 10), 3, 3.0)
    out = find(view_of(api=planted([100.0] * FETCHED.days, spike)))
    assert len(out.anomalies) == 1
    a = out.anomalies[0]
    assert (a.series, a.kind, a.first_day, a.last_day, a.days) == (
        "api",
        "spike",
        spike.first_day,
        spike.last_day,
        3,
    )
    assert (a.actual, a.expected, a.excess, a.ratio) == (900.0, 300.0, 600.0, 3.0)
    assert a.peak_actual == 300.0 and a.peak_expected == 100.0 and not a.ongoing
    assert a.share_of_view_change_pct == 100.0  # the only series: it is the whole change of the view
    assert out.view_actual == 30 * 100.0 + 600.0 and out.view_expected == 3000.0 and out.view_excess == 600.0
    assert out.explained_pct == 100.0
    assert [(r.series, r.first_day, r.excess) for r in out.view_anomalies] == [("Total", spike.first_day, 600.0)]


def test_a_weekly_pattern_is_normal_and_a_weekend_spike_is_measured_against_a_weekend() -> None:
    base = [78.0 if d.weekday() >= 5 else 100.0 for d in days()]
    saturday = date(2026, 11, 14)
    assert saturday.weekday() == 5
    out = find(view_of(web=planted(base, PlantedSpike("web", saturday, 1, 2.0))))
    assert [(a.first_day, a.actual, a.expected, a.excess) for a in out.anomalies] == [
        (saturday, 156.0, 78.0, 78.0)
    ]


def test_a_five_day_spike_does_not_become_its_own_normal() -> None:
    spike = PlantedSpike("etl", date(2026, 11, 3), 5, 1.5)
    out = find(view_of(etl=planted([200.0] * FETCHED.days, spike)))
    assert len(out.anomalies) == 1
    a = out.anomalies[0]
    assert (a.first_day, a.last_day, a.expected, a.excess) == (spike.first_day, spike.last_day, 1000.0, 500.0)


def test_a_trending_series_is_expected_on_its_trend() -> None:
    base = [100.0 * 1.01**i for i in range(FETCHED.days)]  # +1% a day
    day = date(2026, 11, 20)
    i = (day - FETCHED.first).days
    out = find(view_of(ml=planted(base, PlantedSpike("ml", day, 1, 2.0))))
    assert len(out.anomalies) == 1
    a = out.anomalies[0]
    assert a.first_day == day and a.actual == pytest.approx(2 * base[i], abs=0.01)
    assert a.expected == pytest.approx(base[i], rel=0.001)  # the 1% log offset bends the line very slightly


def test_a_drop_is_reported_as_a_drop() -> None:
    base = [100.0] * FETCHED.days
    out = find(view_of(db=planted(base, PlantedSpike("db", date(2026, 11, 28), 2, 0.0))))
    assert [(a.kind, a.first_day, a.days, a.actual, a.expected, a.excess, a.ongoing) for a in out.anomalies] == [
        ("drop", date(2026, 11, 28), 2, 0.0, 200.0, -200.0, True)  # through the last day checked: ongoing
    ]


def test_series_too_small_to_matter_are_left_out_and_counted() -> None:
    spike = PlantedSpike("tiny", date(2026, 11, 10), 1, 5.0)  # +40 dollars in a 10,010-a-day view
    series = view_of(big=[10_000.0] * FETCHED.days, tiny=planted([10.0] * FETCHED.days, spike))
    out = find(series)
    assert out.min_excess == round(0.005 * (10_010 + 40 / FETCHED.days), 2)  # 0.5% of the average day
    assert out.anomalies == [] and out.left_out_small == 1
    assert any("lower min_excess" in n for n in out.notes)
    shown = find(series, min_excess=10.0)
    assert [(a.series, a.excess) for a in shown.anomalies] == [("tiny", 40.0)]


def test_today_is_never_checked_and_a_range_of_only_today_says_what_to_do() -> None:
    span, notes = anomalies.checked_span(DateSpan(date(2026, 11, 1), TODAY), TODAY)
    assert span.last == TODAY - timedelta(days=1) and "incomplete" in notes[0]
    with pytest.raises(InputError, match="last_30_days"):
        anomalies.checked_span(DateSpan(TODAY, TODAY), TODAY)


# ----------------------------------------------------------------------------- end to end


def spikes_behind(sb: Sandbox, view_name: str, series: str, first: date, last: date) -> list[PlantedSpike]:
    """The spikes planted in the sandbox's cost table that touch ``series`` of the view within [first, last]."""
    view = next(v for v in sb.account.views if v.name == view_name)
    out = []
    for planted_on in sb.account.costs.spikes:
        s = planted_on.spike
        if s.last_day < first or s.first_day > last:
            continue
        lines = [line for line in sb.account.costs.lines if line.id in planted_on.line_ids]
        if any(view.group_of(sb.account.row(line, s.first_day)) == series for line in lines):
            out.append(s)
    return out


def assert_explained(sb: Sandbox, view_name: str, anomalies_out: list[dict[str, object]]) -> None:
    """Every reported anomaly lies on a spike the sandbox planted in that series' cost lines."""
    for a in anomalies_out:
        first, last = date.fromisoformat(str(a["first_day"])), date.fromisoformat(str(a["last_day"]))
        assert spikes_behind(sb, view_name, str(a["series"]), first, last), (view_name, a)


async def test_did_anything_spike_in_the_last_30_days_and_why(tmp_path: Path) -> None:
    """'Did anything spike in the last 30 days, and why?' — two calls, under 8 KB."""
    async with demo(tmp_path) as (client, sb):
        views = await call(client, "list_views")
        view = next(v for v in views["views"] if v["name"] == "All costs by service")
        result = await client.call_tool("find_cost_anomalies", {"view": view["id"]})
        assert not result.is_error
        out = result.structured_content
        assert out is not None and len(text(result).encode()) <= 8 * 1024

    first, last = TODAY - timedelta(days=30), TODAY - timedelta(days=1)
    assert (out["first_day"], out["last_day"], out["days"]) == (first.isoformat(), last.isoformat(), 30)
    sandbox_view = next(v for v in sb.account.views if v.name == "All costs by service")
    rds = next(s for s in sandbox_view.spikes if s.group == "AmazonRDS")  # 3 days at 3x, from the table
    assert (TODAY - rds.first_day).days == 12
    spike_days = [rds.first_day + timedelta(days=k) for k in range(rds.days)]
    actual = sum(round(sandbox_view.cost(rds.group, d, TODAY), 4) for d in spike_days)
    true_excess = actual * (1 - 1 / rds.factor)

    found = [
        a for a in out["anomalies"] if a["series"] == "AmazonRDS" and a["first_day"] == rds.first_day.isoformat()
    ]
    assert len(found) == 1, out["anomalies"]
    a = found[0]
    assert (a["kind"], a["last_day"], a["days"]) == ("spike", rds.last_day.isoformat(), 3)
    assert a["actual"] == round(actual, 2)
    assert a["excess"] == pytest.approx(true_excess, rel=0.05)
    assert 80 <= a["share_of_view_change_pct"] <= 120  # the view moved by about this spike, no more
    assert out["anomalies"][0]["excess"] >= a["excess"] - 0.01 or out["anomalies"][0] == a
    assert_explained(sb, "All costs by service", out["anomalies"])  # nothing reported that was not planted
    assert [s["tool"] for s in out["next_steps"]] == ["query_costs", "query_view_costs", "summarize_savings"]
    assert "«AmazonRDS»" in out["next_steps"][0]["why"]  # account data in free text is fenced


async def test_every_spike_planted_through_a_view_is_found_there_and_nothing_unplanted(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        first, last = TODAY - timedelta(days=90), TODAY - timedelta(days=1)
        for view in sb.account.views:
            out = await call(
                client, "find_cost_anomalies", {"view": view.name, "period": "last_90_days", "top_n": 50}
            )
            found = {(a["series"], a["first_day"], a["last_day"]) for a in out["anomalies"]}
            for s in view.spikes:
                if first <= s.first_day and s.last_day <= last:
                    assert (s.group, s.first_day.isoformat(), s.last_day.isoformat()) in found, (view.name, s)
            assert_explained(sb, view.name, out["anomalies"])
            assert not out["truncated"], view.name


async def test_the_tool_is_read_only_and_closed_world(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        a = tools["find_cost_anomalies"].annotations
        assert a is not None and a.read_only_hint is True and a.open_world_hint is False
        message = await call_error(
            client, "find_cost_anomalies", {"view": "Costs by team", "start": TODAY.isoformat()}
        )
        assert "incomplete" in message and "last_30_days" in message


async def test_the_shares_of_the_view_change_are_bounded_defined_and_explained_adds_up(tmp_path: Path) -> None:
    """A reader sums or compares the shares: each stays within 0-100 and the answer says what it is of."""
    async with demo(tmp_path) as (client, _sb):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        out = await call(client, "find_cost_anomalies", {"view": "All costs by service", "top_n": 50})
    description = tools["find_cost_anomalies"].description or ""
    assert "share_of_view_change_pct" in description and "explained_pct" in description
    assert "not additive across days" in description
    found = out["anomalies"]
    assert len(found) == out["anomaly_count"] >= 3
    shares = [a["share_of_view_change_pct"] for a in found if a["share_of_view_change_pct"] is not None]
    assert shares and all(0.0 <= s <= 100.0 for s in shares), shares
    rds = next(a for a in found if a["series"] == "AmazonRDS" and a["days"] == 3)
    assert rds["share_of_view_change_pct"] >= 95.0  # nothing else moved on those days: it is the view's change
    # explained_pct: all the anomalies' excess against the view's over the whole range, at most 100
    listed = sum(a["excess"] for a in found)
    assert out["explained_pct"] == pytest.approx(min(listed / out["view_excess"], 1.0) * 100.0, abs=0.1)
    assert 0.0 <= out["explained_pct"] <= 100.0
    assert any("do not add up" in n for n in out["notes"])
    # On the demo the anomalies add up to a little more than the view's excess (the rest of the view ran
    # under its normal): explained_pct is capped and a note gives the dollars (to the cent's rounding).
    assert listed > out["view_excess"]
    rest = listed - out["view_excess"]
    cap_note = next(n for n in out["notes"] if "capped at 100" in n)
    under = float(cap_note.split("ran ")[1].split(" under")[0].replace(",", ""))
    assert under == pytest.approx(rest, abs=0.05)


async def test_every_next_step_is_a_call_that_succeeds_as_given(tmp_path: Path) -> None:
    """Each suggested call is sent exactly as the answer gives it; the first one selects the series
    with the key the view groups it by, so its cost on the anomaly's days is the anomaly's."""
    async with demo(tmp_path) as (client, sb):
        answers = {
            view.name: await call(client, "find_cost_anomalies", {"view": view.name}) for view in sb.account.views
        }
        quiet = await call(client, "find_cost_anomalies", {"view": "Data platform", "min_excess": 10_000_000})
        results: dict[tuple[str, str], dict[str, object]] = {}
        for name, out in [*answers.items(), ("quiet", quiet)]:
            assert out["next_steps"], name
            for step in out["next_steps"]:
                results[(name, step["tool"])] = await call(client, step["tool"], step["arguments"])
    assert quiet["anomalies"] == [] and [s["tool"] for s in quiet["next_steps"]] == [
        "find_cost_anomalies",
        "query_view_costs",
    ]
    # Every view with an anomaly gets the drill-down on a real key: none is left for the model to guess.
    for name, out in answers.items():
        if out["anomalies"]:
            assert out["next_steps"][0]["tool"] == "query_costs", (name, out["next_steps"])
    out = answers["All costs by service"]
    top, step = out["anomalies"][0], out["next_steps"][0]
    assert step["arguments"]["filter"] == {
        "key": "service",
        "cost_center": "AWS",
        "op": "=",
        "value": top["series"],
    }
    assert all(g.startswith("AWS:") for g in step["arguments"]["group_by"])  # AWS's keys, named unambiguously
    drill = results[("All costs by service", "query_costs")]
    spike_days = {top["first_day"], top["last_day"]} | {
        (date.fromisoformat(top["first_day"]) + timedelta(days=k)).isoformat() for k in range(top["days"])
    }
    timeline = drill["timeline"]
    assert isinstance(timeline, list)
    on_spike_days = sum(row["total"] for row in timeline if row["period"] in spike_days)
    assert on_spike_days == pytest.approx(top["actual"], abs=0.05)
    assert all(row["top"] for row in timeline)  # day by day per group
    assert not [n for n in drill["notes"] if "no value" in n]  # its group-by keys are set on these costs


async def test_a_key_that_cannot_be_read_leaves_the_answer_and_says_why_no_drill_down(tmp_path: Path) -> None:
    """Naming the series' key reads value lists; when Finout refuses, the anomalies still come, with a note."""
    sb = Sandbox(seed=7, today=TODAY, compute_s=0)
    sb.faults.script("GET /v1/megabill/query-language/values/{costCenter}/{key}", [Fault(status=403)] * 10)
    async with demo(tmp_path, sandbox=sb) as (client, _sb):
        out = await call(client, "find_cost_anomalies", {"view": "All costs by service"})
    assert out["anomalies"][0]["series"] == "AmazonRDS"
    assert [s["tool"] for s in out["next_steps"]] == ["query_view_costs", "summarize_savings"]
    note = next(n for n in out["notes"] if "key behind" in n)
    assert "«AmazonRDS»" in note and "403" in note and "list_key_values" in note


async def test_among_50000_look_alike_keys_the_key_a_view_groups_by_is_still_named(tmp_path: Path) -> None:
    """The large account has thousands of tag keys named service_N, project_N...: the drill-down still
    selects the series with the key the view groups it by, reading a few value lists, not thousands."""
    sb = Sandbox(seed=7, today=TODAY, compute_s=0, scale="large")
    async with demo(tmp_path, sandbox=sb) as (client, _sb):
        before = len(sb.request_log)
        out = await call(client, "find_cost_anomalies", {"view": "Data platform"})
        reads = [r.raw_path for r in sb.request_log[before:] if "/megabill/query-language/values/" in r.raw_path]
        step = out["next_steps"][0]
        assert step["tool"] == "query_costs"
        await call(client, step["tool"], step["arguments"])
    top = out["anomalies"][0]
    assert top["series"] == "DATA_SCIENCE_WH"  # planted in that view (sandbox.spikes)
    assert step["arguments"]["filter"] == {
        "key": "warehouse",
        "cost_center": "Snowflake",
        "op": "=",
        "value": "DATA_SCIENCE_WH",
    }
    assert len(reads) <= drilldown.MAX_LOOKUPS
