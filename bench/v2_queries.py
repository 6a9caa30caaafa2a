"""API v2 ``query_costs`` at Finout's documented cadence: ``python bench/v2_queries.py [--stress] [--json out]``.

Real time, no scaling: the client waits 2 s before the first status poll and then polls every
5 s (Finout: "Poll every 5 seconds"); the sandbox takes ``--compute`` seconds (default 3) to
compute each query, so a query is seen ``running`` once and ``completed`` at the second poll.
Finout documents no compute time: the figures scale with it (time ≈ first poll after compute).

Figures:
  30-day     one query_costs, last 30 days by namespace: seconds, v2 requests, queries
  366-day    one query_costs over 366 days by namespace (7 queries of <= 60 days, in parallel)
  10x30-day  10 concurrent 30-day questions (distinct filters, no reuse): seconds, and the
             largest share of each route's per-minute budget used in any 60 s window
  reuse      the 30-day question asked again: requests (stored queryId, no new query)
  --stress   10 concurrent 366-day questions (70 queries: more than 50 generate-query a minute,
             so the budget must pace them)

Every request is counted from the sandbox's request log, and the per-minute shares are what the
sandbox saw: for each route, the most requests it answered in any 60 s window over its limit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from finout_mcp.config import Settings
from finout_mcp.sandbox import Sandbox
from finout_mcp.sandbox.v2 import PER_MINUTE as SANDBOX_LIMITS
from finout_mcp.server.app import build_server

TODAY = date(2026, 11, 25)
NAMESPACES = ["checkout", "checkout-worker", "payments", "search", "search-indexer", "data-pipeline", "airflow",
              "ml-serving", "frontend", "monitoring"]  # fmt: skip


def log(msg: str) -> None:
    print(f"[bench-v2] {msg}", file=sys.stderr, flush=True)


def v2_requests(sb: Sandbox, since: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in sb.request_log[since:]:
        if r.raw_path.startswith("/v2/"):
            route = r.route or r.raw_path
            out[route] = out.get(route, 0) + 1
    return out


def peak_minute_share(sent: list[tuple[float, str]]) -> dict[str, float]:
    """Per route: the most requests in any 60 s window, as a share of the route's limit (%)."""
    by_route: dict[str, list[float]] = {}
    for t, route in sent:
        by_route.setdefault(route, []).append(t)
    out = {}
    for route, times in by_route.items():
        times.sort()
        j = 0
        best = 0
        for i, t in enumerate(times):
            while times[j] <= t - 60.0:
                j += 1
            best = max(best, i - j + 1)
        out[route] = round(best / SANDBOX_LIMITS[route] * 100.0, 1)
    return out


async def ask(client: Client, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool("query_costs", args)
    if result.is_error:
        raise RuntimeError(str(result.content)[:300])
    assert result.structured_content is not None
    return result.structured_content


async def main(compute: float, stress: bool) -> dict[str, Any]:
    sb = Sandbox(seed=7, today=TODAY, compute_s=compute)
    settings = Settings(demo=True, state_dir=Path(tempfile.mkdtemp()))  # documented cadence: 2 s, then 5 s
    server = build_server(settings, sandbox=sb, today=lambda: TODAY)
    figures: dict[str, Any] = {
        "compute_s": compute,
        "first_wait_s": settings.v2_poll_first_s,
        "poll_interval_s": settings.v2_poll_interval_s,
    }
    async with Client(server) as client:
        await client.call_tool("list_megabill_keys", {"search": "namespace"})  # warm the v1 catalogue

        async def timed(name: str, args: dict[str, Any]) -> dict[str, Any]:
            mark = len(sb.request_log)
            t0 = time.perf_counter()
            out = await ask(client, args)
            seconds = time.perf_counter() - t0
            reqs = v2_requests(sb, mark)
            figures[name] = {
                "seconds": round(seconds, 2),
                "v2_requests": sum(reqs.values()),
                "by_route": reqs,
                "queries": len(out["provenance"]["queries"]),
                "daily_budget_used": out["provenance"]["daily_queries_used"],
            }
            log(f"{name}: {figures[name]}")
            return out

        await timed("30-day", {"group_by": ["namespace"], "period": "last_30_days"})
        await timed("reuse", {"group_by": ["namespace"], "period": "last_30_days"})
        await timed("366-day", {"group_by": ["namespace"], "start": "2025-11-25", "end": "2026-11-25"})

        async def concurrent(name: str, span: dict[str, str]) -> None:
            mark = len(sb.request_log)
            t0 = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for ns in NAMESPACES:
                    args = {
                        "filter": {"key": "namespace", "op": "=", "value": ns},
                        "group_by": ["pl_app"],
                        **span,
                    }
                    tg.start_soon(ask, client, args)
            seconds = time.perf_counter() - t0
            sent = [(r.at, r.route or r.raw_path) for r in sb.request_log[mark:] if r.raw_path.startswith("/v2/")]
            shares = peak_minute_share(sent)
            figures[name] = {
                "seconds": round(seconds, 2),
                "v2_requests": sum(v2_requests(sb, mark).values()),
                "peak_minute_share_pct": shares,
                "max_share_pct": max(shares.values()),
                "sandbox_429": sum(1 for r in sb.request_log[mark:] if r.status == 429),
            }
            log(f"{name}: {figures[name]}")

        await concurrent("10x30-day", {"period": "last_30_days"})
        if stress:
            await concurrent("10x366-day", {"start": "2025-11-24", "end": "2026-11-24"})
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--compute", type=float, default=3.0, help="sandbox compute time per query, seconds")
    parser.add_argument("--stress", action="store_true", help="also 10 concurrent 366-day questions (minutes)")
    parser.add_argument("--json", type=Path, default=None)
    ns = parser.parse_args()
    result = anyio.run(main, ns.compute, ns.stress)
    text = json.dumps(result, indent=2)
    print(text)
    if ns.json:
        ns.json.write_text(text)
