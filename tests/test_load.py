"""Load: 100 concurrent tool calls from one client against a sandbox answering in 20-50 ms.

All calls complete, the sandbox never sees more than 5 requests in flight (Finout's limit per
API key) and never has to answer 429, and memory goes back to its baseline afterwards.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

import anyio

from finout_mcp.sandbox import Sandbox
from finout_mcp.sandbox.faults import Fault
from tests.support import TODAY, demo, text

# Uncached reads (refresh=true) and cost queries (never cached).
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("list_views", {"refresh": True}),
    ("list_megabill_keys", {"search": "account", "refresh": True}),
    ("list_key_values", {"key": "pl_app", "refresh": True}),
    ("list_virtual_tags", {"refresh": True}),
    ("list_costguard_scans", {"refresh": True}),
    ("list_endpoints", {}),
    ("get_virtual_tag", {"tag": "Team"}),
    ("query_view_costs", {"view": "All costs by service", "period": "last_30_days"}),
    ("query_view_costs", {"view": "Costs by team", "period": "last_month", "compare_previous": True}),
    ("query_view_costs", {"view": "Kubernetes by namespace", "start": "2026-06-01", "end": "2026-10-31"}),
]
N_CALLS = 100
MAX_GROWTH_BYTES = 20 * 1024 * 1024


def _loaded_sandbox() -> Sandbox:
    sb = Sandbox(seed=7, today=TODAY)
    sb.faults.latency_ms = 20  # every request: 20 ms, plus 0-30 ms more from the script below
    rng = random.Random(42)
    sb.faults.script("*", [Fault(delay_s=rng.uniform(0, 0.03)) for _ in range(2000)])
    return sb


async def _burst(client: Any, seed: int) -> list[str]:
    rng = random.Random(seed)
    plan = [CALLS[i % len(CALLS)] for i in range(N_CALLS)]
    rng.shuffle(plan)
    failures: list[str] = []
    done = 0

    async def one(name: str, args: dict[str, Any]) -> None:
        nonlocal done
        result = await client.call_tool(name, args)
        if result.is_error:
            failures.append(f"{name}: {text(result)[:200]}")
        done += 1

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for name, args in plan:
                tg.start_soon(one, name, args)
    assert done == N_CALLS
    return failures


async def test_100_concurrent_calls_respect_the_5_in_flight_limit(tmp_path: Path) -> None:
    sb = _loaded_sandbox()
    async with demo(tmp_path, sandbox=sb) as (client, sb):
        await _burst(client, seed=0)  # warm up: imports, caches of resolvers, pydantic schemas
        gc.collect()
        sb.stats.reset()
        sb.request_log.clear()
        tracemalloc.start()
        try:
            gc.collect()
            baseline, _ = tracemalloc.get_traced_memory()
            started = time.monotonic()
            failures = await _burst(client, seed=1)
            elapsed = time.monotonic() - started
            _, peak = tracemalloc.get_traced_memory()
            sb.request_log.clear()  # the sandbox's own log is not the server's memory
            gc.collect()
            after, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert failures == []
        assert sb.stats.total_requests >= N_CALLS // 2  # concurrent refreshes of one list are single-flighted
        assert sb.stats.max_in_flight <= 5, sb.stats.as_dict()
        assert sb.stats.max_in_flight >= 4, "the load never used the concurrency allowed"
        assert sb.stats.rate_limited == 0, sb.stats.as_dict()
        assert after - baseline < MAX_GROWTH_BYTES, f"grew by {(after - baseline) / 1e6:.1f} MB"
        print(  # noqa: T201 - shown with -s: the numbers the report quotes
            f"\nload: {N_CALLS} calls, {sb.stats.total_requests} requests in {elapsed:.1f} s, "
            f"max in flight {sb.stats.max_in_flight}, 429s {sb.stats.rate_limited}, "
            f"memory growth {(after - baseline) / 1e6:.2f} MB (peak +{(peak - baseline) / 1e6:.1f} MB)"
        )
