"""One heavy call must not stall the others: CPU-bound work runs off the event loop, and
oversized arguments are refused before any work."""

from __future__ import annotations

import time
from pathlib import Path

import anyio

from finout_mcp.server.tools.common import MAX_ARGUMENT_CHARS, MAX_METADATA_VALUES
from tests.support import demo, report, text


async def test_a_huge_filter_does_not_stall_the_event_loop(tmp_path: Path) -> None:
    """While a 200,000-condition intent is composed the event loop keeps turning: its longest stall
    is a small part of the heavy call (on the loop, the parse alone would stall it for most of it)."""
    intent = {"any": [{"key": "service", "op": "=", "value": f"s{i}"} for i in range(200_000)]}
    longest_stall = 0.0
    heavy_done = anyio.Event()
    async with demo(tmp_path) as (client, _sb):
        await client.call_tool("list_views", {})  # warm the catalogue

        async def heavy() -> None:
            await client.call_tool("compose_filter", {"intent": intent})
            heavy_done.set()

        async def ticker() -> None:
            nonlocal longest_stall
            last = time.perf_counter()
            while not heavy_done.is_set():
                await anyio.sleep(0.005)
                now = time.perf_counter()
                longest_stall = max(longest_stall, now - last)
                last = now

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            tg.start_soon(heavy)
        took = time.perf_counter() - started
    report(f"heavy compose: {took:.2f} s; longest event-loop stall meanwhile {longest_stall * 1000:.0f} ms")
    assert longest_stall < took / 3


async def test_oversized_arguments_are_refused_before_any_work(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        too_long = await client.call_tool("get_virtual_tag", {"tag": "x" * (MAX_ARGUMENT_CHARS + 1)})
        values = {f"v{i}": {"customMetadata": {"owner": "a"}} for i in range(MAX_METADATA_VALUES + 1)}
        too_many = await client.call_tool(
            "update_virtual_tag_metadata", {"tag": "Team", "values": values, "dry_run": True}
        )
    assert too_long.is_error and "at most" in text(too_long)
    assert too_many.is_error and "values" in text(too_many)
    assert not [r for r in sb.request_log if "virtual-tags" in r.raw_path and r.method != "GET"]
