"""The questions users ask most, end to end through the MCP client, in one or two calls each.

Expected figures are computed here from the sandbox's own data (its daily costs and its scan
resources), never copied from a tool's answer.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from finout_mcp.sandbox import Sandbox
from tests.support import TODAY, call, demo, text


def sandbox_total(sb: Sandbox, view_name: str, first: date, last: date) -> float:
    """The view's cost over [first, last], summed from the sandbox's per-group daily costs."""
    view = next(v for v in sb.account.views if v.name == view_name)
    total = 0.0
    d = first
    while d <= last:
        total += sum(round(view.cost(g, d, sb.account.today), 4) for g in view.groups)
        d += timedelta(days=1)
    return total


async def test_last_month_compared_with_the_month_before(tmp_path: Path) -> None:
    """'What did we spend last month, and how does that compare with the month before?' (2 calls)"""
    async with demo(tmp_path) as (client, sb):
        views = await call(client, "list_views")
        view = next(v for v in views["views"] if v["name"] == "All costs by service")
        result = await client.call_tool(
            "query_view_costs", {"view": view["id"], "period": "last_month", "compare_previous": True}
        )
        out = result.structured_content
        assert not result.is_error and out is not None
        assert len(text(result).encode()) <= 8 * 1024

    assert date(2026, 11, 25) == TODAY  # last month: October 2026 (31 days); before: September (30)
    october = sandbox_total(sb, "All costs by service", date(2026, 10, 1), date(2026, 10, 31))
    september = sandbox_total(sb, "All costs by service", date(2026, 9, 1), date(2026, 9, 30))
    assert (out["first_day"], out["last_day"], out["days"]) == ("2026-10-01", "2026-10-31", 31)
    assert (out["previous_first_day"], out["previous_last_day"], out["previous_days"]) == (
        "2026-09-01",
        "2026-09-30",
        30,
    )
    assert (out["period"], out["previous_period"]) == ("October 2026", "September 2026")
    assert abs(out["total"] - october) < 0.01
    assert abs(out["previous_total"] - september) < 0.01
    assert abs(out["change_abs"] - (october - september)) < 0.01
    assert out["change_pct"] == round((october - september) / september * 100, 1)
    # different lengths: the per-day figures say whether the daily run rate moved
    assert abs(out["per_day"] - october / 31) < 0.01
    assert abs(out["previous_per_day"] - september / 30) < 0.01
    line = out["comparison"]
    assert "October 2026 (2026-10-01..2026-10-31, 31 days)" in line
    assert "September 2026 (2026-09-01..2026-09-30, 30 days), the calendar month before" in line
    assert "per day" in line


async def test_same_month_last_year_by_explicit_window(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        out = await call(
            client,
            "query_view_costs",
            {
                "view": "Costs by team",
                "period": "last_month",
                "compare_start": "2025-10-01",
                "compare_end": "2025-10-31",
            },
        )
    expected = sandbox_total(sb, "Costs by team", date(2025, 10, 1), date(2025, 10, 31))
    assert out["previous_period"] == "October 2025" and out["previous_days"] == 31
    assert abs(out["previous_total"] - expected) < 0.01
    assert out.get("per_day") is None  # same length: no per-day figures needed
    assert "the comparison range you gave" in out["comparison"]


async def test_month_to_date_against_the_same_days_of_last_month(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        out = await call(
            client,
            "query_view_costs",
            {"view": "Costs by team", "period": "month_to_date", "compare_previous": True},
        )
    assert (out["first_day"], out["last_day"]) == ("2026-11-01", "2026-11-25")
    assert (out["previous_first_day"], out["previous_last_day"]) == ("2026-10-01", "2026-10-25")
    expected = sandbox_total(sb, "Costs by team", date(2026, 10, 1), date(2026, 10, 25))
    assert abs(out["previous_total"] - expected) < 0.01
    assert any("still incomplete" in n for n in out["notes"])


def sandbox_savings(sb: Sandbox) -> tuple[float, list[tuple[str, float]], dict[str, list[str]]]:
    """From the sandbox's scan resources: the grand total with each resource counted once (its
    largest finding), every resource's counted savings largest first, and the resources that
    several scans flagged with those scans."""
    best: dict[str, float] = {}
    scans_of: dict[str, list[str]] = {}
    for scan in sb.account.scans:
        for r in scan.resources:
            best[r.resource_id] = max(best.get(r.resource_id, 0.0), r.yearly_savings)
            scans_of.setdefault(r.resource_id, []).append(scan.name)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
    return sum(best.values()), ranked, {rid: s for rid, s in scans_of.items() if len(s) > 1}


async def test_five_biggest_savings_and_the_yearly_total_in_one_call(tmp_path: Path) -> None:
    """'Our 5 biggest savings and the yearly total' (1 call, within the 5-request cap)."""
    async with demo(tmp_path) as (client, sb):
        sb.stats.reset()
        result = await client.call_tool("summarize_savings", {"top_n": 5})
        out = result.structured_content
        assert not result.is_error and out is not None
        assert len(text(result).encode()) <= 8 * 1024
        assert sb.stats.max_in_flight <= 5
        assert sb.stats.total_requests == 1 + len(sb.account.scans)  # the scan list, then each scan once

    grand, ranked, overlapping = sandbox_savings(sb)
    assert abs(out["yearly_potential_savings"] - grand) < 0.01
    assert [(r["id"], r["yearly_potential_savings"]) for r in out["top_resources"]] == [
        (rid, round(v, 2)) for rid, v in ranked[:5]
    ]
    assert all(r["reason"] for r in out["top_resources"])
    # the sandbox plants two EC2 instances that both the idle and the rightsizing scan flag
    assert len(overlapping) == 2
    assert {o["id"]: sorted(o["scans"]) for o in out["overlaps"]} == {
        rid: sorted(s) for rid, s in overlapping.items()
    }
    naive = sum(r.yearly_savings for s in sb.account.scans for r in s.resources)
    assert abs(out["sum_of_scan_totals"] - naive) < 0.05 and naive > grand
    assert len(out["scans"]) == len(sb.account.scans)
    assert "analysis days" in out["coverage"]


async def test_every_read_answer_is_within_8_kb_and_says_how_to_get_more(tmp_path: Path) -> None:
    """Each read tool, with only its required arguments (every view, scan, tag), answers in at most
    8 KB; where it left something out, its notes name how to get the rest."""
    import json

    async with demo(tmp_path) as (client, _sb):
        views = [v["id"] for v in (await call(client, "list_views"))["views"]]
        scans = [s["id"] for s in (await call(client, "list_costguard_scans"))["scans"]]
        tags = [t["id"] for t in (await call(client, "list_virtual_tags"))["tags"]]
        args_for = {
            "view": [{"view": v} for v in views],
            "scan": [{"scan": s} for s in scans],
            "tag": [{"tag": t} for t in tags],
            "key": [{"key": k} for k in ("Account Name", "namespace")],
            "intent": [{"intent": {"key": "namespace", "op": "in", "values": ["checkout"]}}],
        }
        checked = cut = 0
        for tool in (await client.list_tools()).tools:
            if not (tool.annotations and tool.annotations.read_only_hint):
                continue
            required = tool.input_schema.get("required", [])
            variants = args_for[required[0]] if required else [{}]
            for args in variants:
                result = await client.call_tool(tool.name, args)
                assert not result.is_error, f"{tool.name}({args}): {text(result)[:300]}"
                size = len(text(result).encode())
                assert size <= 8 * 1024, f"{tool.name}({args}) answered {size} B"
                body = result.structured_content or {}
                if body.get("truncated") or body.get("incomplete"):
                    notes = " ".join(body.get("notes", []))
                    assert any(w in notes for w in ("limit", "top_n", "search", "range")), (tool.name, notes)
                    cut += 1
                checked += 1
                json.dumps(body)  # structured and serialisable
        assert checked >= 40  # every view, scan and tag was asked, not just one of each
        assert cut >= 1  # some default answers were cut, and their notes were checked
