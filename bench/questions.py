"""Calls and bytes an assistant needs for the common questions: ``python bench/questions.py``.

Each question is played the way an assistant reading only the tool descriptions would: the
shortest sequence of calls the server's tools allow for a correct answer (when a one-call tool
exists it is used; otherwise the older route). Runs in memory against the demo sandbox with a
pinned "today", so the figures are the same on every machine. ``--json`` writes them out.

Bytes are counted twice: the text part a model reads (compact JSON) and the whole
``CallToolResult`` as sent (text + structured content).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from finout_mcp.config import Settings
from finout_mcp.sandbox import Sandbox
from finout_mcp.server.app import build_server

TODAY = date(2026, 12, 1)
BROADEST_VIEW = "All costs by service"


@dataclass
class Figure:
    question: str
    calls: int = 0
    text_bytes: int = 0
    sent_bytes: int = 0
    steps: list[str] = field(default_factory=list)


async def _call(client: Client, fig: Figure, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    if result.is_error:
        raise RuntimeError(f"{tool}({args}) failed: {result.content}")
    fig.calls += 1
    fig.text_bytes += sum(len(getattr(c, "text", "").encode()) for c in result.content)
    fig.sent_bytes += len(result.model_dump_json(by_alias=True, exclude_none=True).encode())
    fig.steps.append(f"{tool}({json.dumps(args)})")
    return result.structured_content or {}


async def last_month_vs_previous(client: Client, tools: set[str]) -> Figure:
    fig = Figure("What did we spend last month, and how does that compare with the month before?")
    # The view name is in the instructions' example only; an assistant lists the views first.
    views = (await _call(client, fig, "list_views", {}))["views"]
    view = next(v["id"] for v in views if v["name"] == BROADEST_VIEW)
    await _call(client, fig, "query_view_costs", {"view": view, "period": "last_month", "compare_previous": True})
    return fig


async def biggest_savings(client: Client, tools: set[str]) -> Figure:
    fig = Figure("Our 5 biggest savings and the yearly total")
    if "summarize_savings" in tools:
        await _call(client, fig, "summarize_savings", {"top_n": 5})
        return fig
    scans = (await _call(client, fig, "list_costguard_scans", {}))["scans"]
    for s in scans:
        await _call(client, fig, "get_scan_recommendations", {"scan": s["id"]})
    return fig


async def spike_last_30_days(client: Client, tools: set[str]) -> Figure:
    fig = Figure("Did anything spike in the last 30 days, and why?")
    views = (await _call(client, fig, "list_views", {}))["views"]
    view = next(v["id"] for v in views if v["name"] == BROADEST_VIEW)
    if "find_cost_anomalies" in tools:
        await _call(client, fig, "find_cost_anomalies", {"view": view})
        return fig
    # Before: the day-by-series table, in which the assistant has to find the spike itself.
    args = {"view": view, "period": "last_30_days", "granularity": "day", "breakdown_series": True}
    await _call(client, fig, "query_view_costs", args)
    return fig


async def forecast_next_month(client: Client, tools: set[str]) -> Figure:
    fig = Figure("Forecast next month")
    views = (await _call(client, fig, "list_views", {}))["views"]
    view = next(v["id"] for v in views if v["name"] == BROADEST_VIEW)
    if "forecast_costs" in tools:
        await _call(client, fig, "forecast_costs", {"view": view, "horizon": 1})
        return fig
    # Before: no forecast; the assistant extrapolates monthly totals by itself.
    await _call(
        client, fig, "query_view_costs", {"view": view, "period": "last_12_months", "granularity": "month"}
    )
    return fig


async def measure() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(demo=True, state_dir=Path(tmp))
        server = build_server(settings, sandbox=Sandbox(seed=7, today=TODAY), today=lambda: TODAY)
        async with Client(server) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            return [await q(client, tools) for q in QUESTIONS]


QUESTIONS = (last_month_vs_previous, biggest_savings, spike_last_30_days, forecast_next_month)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures = anyio.run(measure)
    for f in figures:
        print(
            f"{f.question}\n  {f.calls} calls, {f.text_bytes / 1024:.1f} KB text "
            f"({f.text_bytes} B), {f.sent_bytes / 1024:.1f} KB as sent",
            file=sys.stderr,
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(f) for f in figures], indent=2))


if __name__ == "__main__":
    main()
