"""list_views and query_view_costs through the MCP client against the sandbox."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from tests.support import TODAY, call, call_error, demo


async def test_list_views_and_search(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        out = await call(client, "list_views")
        names = [v["name"] for v in out["views"]]
        assert out["total"] == len(sb.account.views) >= 5
        assert "Costs by team" in names
        found = await call(client, "list_views", {"search": "team"})
        assert found["views"][0]["name"] == "Costs by team"


async def test_last_month_total_matches_sum_of_days(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        out = await call(client, "query_view_costs", {"view": "All costs by service", "period": "last_month"})
        assert out["first_day"] == "2026-10-01" and out["last_day"] == "2026-10-31" and out["days"] == 31
        assert out["partial"] is False
        assert out["cost_type"] == "unblendedCost" and out["currency"]
        series_total = sum(s["total"] for s in out["series"])
        assert abs(series_total - out["total"]) < 0.05 * len(out["series"])
        named = [s for s in out["series"] if not s["name"].startswith("Other (")]
        assert named == sorted(named, key=lambda s: -s["total"])
        assert out["series"][-1]["name"].startswith("Other (")  # the rollup comes last
        assert abs(sum(p["total"] for p in out["timeline"]) - out["total"]) < 0.01 * len(out["timeline"]) + 0.05


async def test_view_by_id_equals_view_by_name(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        views = (await call(client, "list_views"))["views"]
        by_id = await call(client, "query_view_costs", {"view": views[1]["id"], "period": "last_7_days"})
        by_name = await call(client, "query_view_costs", {"view": views[1]["name"], "period": "last_7_days"})
        assert by_id["total"] == by_name["total"]


async def test_unknown_view_lists_closest_names(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        message = await call_error(client, "query_view_costs", {"view": "Costs by teams", "period": "last_month"})
        assert "Costs by team" in message and "list_views" in message


async def test_year_is_split_in_windows_within_the_cap_with_progress(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        sb.faults.latency_ms = 20
        progress: list[tuple[float, float | None]] = []

        async def on_progress(p: float, total: float | None, _m: str | None) -> None:
            progress.append((p, total))

        result = await client.call_tool(
            "query_view_costs",
            {
                "view": "All costs by service",
                "start": "2025-11-01",
                "end": "2026-10-31",
                "compare_previous": False,
            },
            progress_callback=on_progress,
        )
        assert not result.is_error
        out = result.structured_content
        assert out is not None and out["days"] == 365
        cost_calls = [r for r in sb.request_log if r.raw_path.endswith("/cost/query-by-view")]
        assert len(cost_calls) == 5  # 365 days = 4 x 90 + 5
        assert all(r.status == 200 for r in cost_calls)
        assert sb.stats.max_in_flight <= 5 and sb.stats.rate_limited == 0
        assert len(progress) == 5 and progress[-1] == (5, 5)
        assert out["granularity"] == "month"


async def test_window_merge_equals_sum_of_separate_queries(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        whole = await call(
            client, "query_view_costs", {"view": "Costs by team", "start": "2026-01-01", "end": "2026-06-30"}
        )
        first = await call(
            client, "query_view_costs", {"view": "Costs by team", "start": "2026-01-01", "end": "2026-03-31"}
        )
        second = await call(
            client, "query_view_costs", {"view": "Costs by team", "start": "2026-04-01", "end": "2026-06-30"}
        )
        assert abs(whole["total"] - (first["total"] + second["total"])) < 0.02


async def test_compare_previous_reports_changes(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        out = await call(
            client,
            "query_view_costs",
            {"view": "All costs by service", "period": "last_month", "compare_previous": True},
        )
        assert out["previous_total"] is not None and out["change_abs"] is not None
        assert abs(out["total"] - out["previous_total"] - out["change_abs"]) < 0.02
        assert any(s.get("change_pct") is not None for s in out["series"])


async def test_bad_dates_are_errors_with_an_example(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        for args in (
            {"start": "2026-10-31", "end": "2026-10-01"},
            {"start": "next tuesday"},
            {"start": (TODAY + timedelta(days=3)).isoformat()},
        ):
            message = await call_error(client, "query_view_costs", {"view": "Costs by team", **args})
            assert "2026-" in message or "period=" in message, message


async def test_default_answer_of_a_year_stays_small(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        for view in ("All costs by service", "Costs by team", "Kubernetes by namespace"):
            result = await client.call_tool(
                "query_view_costs", {"view": view, "period": "last_12_months", "compare_previous": True}
            )
            size = len("".join(getattr(c, "text", "") for c in result.content).encode())
            assert not result.is_error and size <= 8 * 1024, (view, size)


async def test_month_to_date_is_partial(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        out = await call(client, "query_view_costs", {"view": "Costs by team", "period": "month_to_date"})
        assert out["partial"] is True and out["last_day"] == TODAY.isoformat()
        assert out["first_day"] == date(TODAY.year, TODAY.month, 1).isoformat()


async def test_last_year_versus_the_year_before_in_one_call(tmp_path: Path) -> None:
    """'What did we spend last year by service, and what changed most versus the year before?'"""
    async with demo(tmp_path) as (client, _sb):
        result = await client.call_tool(
            "query_view_costs", {"view": "All costs by service", "period": "last_year", "compare_previous": True}
        )
        assert not result.is_error
        out = result.structured_content
        assert out is not None
        assert (out["first_day"], out["last_day"]) == ("2025-01-01", "2025-12-31")
        # the previous period of the same kind: the calendar year 2024 (366 days: a leap year)
        assert (out["previous_first_day"], out["previous_last_day"]) == ("2024-01-01", "2024-12-31")
        assert (out["days"], out["previous_days"]) == (365, 366) and out["per_day"] is not None
        assert out["previous_total"] > 0 and out["change_pct"] is not None
        moves = out["biggest_changes"]
        assert moves and abs(moves[0]["change_abs"]) == max(abs(m["change_abs"]) for m in moves)
        every = await call(
            client,
            "query_view_costs",
            {"view": "All costs by service", "period": "last_year", "compare_previous": True, "top_n": 200},
        )
        largest = max(every["series"], key=lambda s: abs(s["change_abs"]))
        assert moves[0]["name"] == largest["name"]  # found over all series, not only the top ones
        assert len(result.content[0].text.encode()) <= 8 * 1024  # type: ignore[union-attr]
