"""A slow upstream must not turn into a storm of requests (issue: 413 requests, 398 of them 429,
from one long query when Finout took 2.5 s and we waited 2 s).

The same three long cost queries run twice against the sandbox, which answers in 250 ms: once
with a patient client, once with a 200 ms timeout (every request times out). With the timeout
the server may send no more than without it, plus the retries it announces in its log; Finout
never has more than 5 requests in flight and never answers 429, because a request that timed out
keeps its slot until Finout is done with it, and retries come from one budget per tool call.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest
from mcp import Client

from finout_mcp.config import Settings
from finout_mcp.sandbox import Sandbox
from finout_mcp.server.app import build_server
from tests.support import TODAY, report

LATENCY_MS = 250
CALLS = [
    {"view": "All costs by service", "start": "2026-01-01", "end": "2026-11-20"},  # 4 windows of <= 90 days
    {"view": "Costs by team", "start": "2026-01-01", "end": "2026-11-20"},
    {"view": "Kubernetes by namespace", "start": "2026-01-01", "end": "2026-11-20"},
]


async def run(tmp_path: Path, read_timeout: float) -> tuple[Sandbox, int]:
    sb = Sandbox(seed=7, today=TODAY)
    sb.faults.latency_ms = LATENCY_MS
    settings = Settings(demo=True, state_dir=tmp_path / f"state-{read_timeout}", read_timeout=read_timeout)
    server = build_server(settings, sandbox=sb, today=lambda: TODAY)
    errors = 0
    async with Client(server) as client:
        await client.call_tool("list_views", {})  # the catalogue, cached for both runs alike

        async def one(args: dict[str, str]) -> None:
            nonlocal errors
            result = await client.call_tool("query_view_costs", args)
            errors += result.is_error

        async with anyio.create_task_group() as tg:
            for args in CALLS:
                tg.start_soon(one, args)
        await anyio.sleep(LATENCY_MS / 1000 * 2)  # let late answers land before counting
    return sb, errors


async def test_timeouts_send_no_more_than_without_them_plus_announced_retries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    healthy, healthy_errors = await run(tmp_path, read_timeout=30.0)
    assert healthy_errors == 0
    baseline = healthy.stats.total_requests

    caplog.set_level(logging.INFO, logger="finout_mcp.api")
    faulty, faulty_errors = await run(tmp_path, read_timeout=LATENCY_MS / 1000 * 0.8)
    announced = sum("retrying" in r.getMessage() for r in caplog.records)
    sent = faulty.stats.total_requests
    report(
        f"\ntimeout cascade: without faults {baseline} requests; with every request timing out {sent} "
        f"requests ({announced} announced retries), 429s {faulty.stats.rate_limited}, "
        f"max in flight {faulty.stats.max_in_flight}, failed calls {faulty_errors}/3"
    )
    assert faulty_errors == 3  # every call timed out, and said so
    assert sent <= baseline + announced
    assert faulty.stats.rate_limited == 0
    assert faulty.stats.max_in_flight <= 5
    # One budget per call: at most retry_max_attempts - 1 = 3 retries for each of the 3 calls.
    assert announced <= 3 * 3
