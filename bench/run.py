"""finout-mcp benchmarks: ``python bench/run.py [--json out.json] [--only cold,overhead,...]``.

Every figure is measured side by side with its baseline in the same run, so the ratios hold
on a noisy machine. End-to-end figures go through the official MCP ``Client`` over stdio
against ``finout-mcp`` pointed at ``finout-mcp sandbox`` subprocesses on loopback ports
(the real HTTP path, with injected latency where stated).

Figures (see BENCHMARKS.md for goals and the latest numbers):
  cold       spawn -> initialize answered, median of 15: finout-mcp --demo vs a bare MCPServer
  overhead   list_views(refresh=true) over stdio minus a direct httpx GET /v1/view, p50 and p95
  ranges     366-day query_view_costs vs a 90-day one, sandbox latency 200 ms
  throughput 50 concurrent uncached calls at 100 ms latency vs the ideal 5/latency; 429s
  large      --scale large: cached key/value searches, compose_filter, peak RSS of the server
  context    bytes of tools/list and of the default answers of the main read tools
  writes     update_virtual_tag over stdio (fresh resolve, dependency graph, tag lock, re-read,
             read-back, change log) vs the bare GET + PUT a PUT-replaces client needs, p50
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client, StdioServerParameters

from finout_mcp.filters.canonical import strip_display_names

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FINOUT_MCP = str(BIN / "finout-mcp") if (BIN / "finout-mcp").exists() else "finout-mcp"
BARE = str(Path(__file__).resolve().parent / "bare_server.py")
AUTH = {"x-finout-client-id": "bench", "x-finout-secret-key": "bench-secret"}
MODE = "legacy"  # the classic `initialize` handshake, as Claude Desktop and the Inspector do


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


@dataclass
class Row:
    figure: str
    value: str
    goal: str
    met: bool | None
    details: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def sandbox(*args: str) -> Iterator[str]:
    """A ``finout-mcp sandbox`` subprocess on a free loopback port; yields its /v1 base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [FINOUT_MCP, "sandbox", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"sandbox exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("sandbox did not listen within 60 s") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def control(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    root = base.rsplit("/v1", 1)[0]
    r = httpx.request(method, f"{root}/_sandbox/{path}", json=body, timeout=30)
    r.raise_for_status()
    return r.json() if r.content else {}


def server_params(api_url: str | None) -> StdioServerParameters:
    env = dict(os.environ)
    env.pop("FINOUT_MCP_READ_ONLY", None)
    # the change log of the writes benchmark goes to a throw-away dir, never the user's state
    env.setdefault("FINOUT_MCP_STATE_DIR", str(Path(tempfile.gettempdir()) / f"finout-bench-{os.getpid()}"))
    if api_url is None:
        return StdioServerParameters(command=FINOUT_MCP, args=["--demo"], env=env)
    env.update(FINOUT_API_URL=api_url, FINOUT_CLIENT_ID=AUTH["x-finout-client-id"])
    env["FINOUT_SECRET_KEY"] = AUTH["x-finout-secret-key"]
    return StdioServerParameters(command=FINOUT_MCP, args=[], env=env)


@contextlib.asynccontextmanager
async def session(api_url: str | None) -> AsyncIterator[Client]:
    async with Client(server_params(api_url), mode=MODE, read_timeout_seconds=120) as client:
        yield client


def child_pids() -> list[int]:
    """Direct children of this process (the stdio servers the Client spawned)."""
    me, out = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            out.append(int(entry))
    return out


def proc_status_kb(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


async def call(client: Client, tool: str, args: dict[str, Any]) -> Any:
    result = await client.call_tool(tool, args)
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise RuntimeError(f"{tool}({args}) failed: {text[:500]}")
    return result


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


def sent_bytes(model: Any) -> int:
    return len(model.model_dump_json(by_alias=True, exclude_none=True).encode())


def day_ms(d: Any, end_of_day: bool = False) -> int:
    t = datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000
    return int(t + (86_399_999 if end_of_day else 0))


def windows_of(start: Any, end: Any, days: int = 90) -> list[tuple[Any, Any]]:
    out = []
    while start <= end:
        stop = min(end, start + timedelta(days=days - 1))
        out.append((start, stop))
        start = stop + timedelta(days=1)
    return out


async def direct_costs(http: httpx.AsyncClient, api: str, view: str, windows: list[tuple[Any, Any]]) -> None:
    """The floor: the same Finout requests sent straight to the sandbox, 5 at a time."""
    limit = anyio.Semaphore(5)

    async def one(a: Any, b: Any) -> None:
        async with limit:
            body = {
                "viewId": view,
                "date": {"unixTimeMillSecondsStart": day_ms(a), "unixTimeMillSecondsEnd": day_ms(b, True)},
            }
            r = await http.post(f"{api}/cost/query-by-view", json=body)
            r.raise_for_status()
            r.json()

    async with anyio.create_task_group() as tg:
        for a, b in windows:
            tg.start_soon(one, a, b)


# --------------------------------------------------------------------------- 1. cold start


async def bench_cold(runs: int = 15) -> list[Row]:
    async def one(params: StdioServerParameters) -> float:
        t0 = time.perf_counter()
        async with Client(params, mode=MODE):
            return time.perf_counter() - t0

    demo = server_params(None)
    bare = StdioServerParameters(command=sys.executable, args=[BARE], env=dict(os.environ))
    await one(demo)  # warm the OS page cache and .pyc files for both; not counted
    await one(bare)
    t_demo: list[float] = []
    t_bare: list[float] = []
    for _ in range(runs):  # interleaved, so drift hits both alike
        t_demo.append(await one(demo))
        t_bare.append(await one(bare))
    m_demo, m_bare = statistics.median(t_demo), statistics.median(t_bare)
    ratio = m_demo / m_bare
    return [
        Row(
            "cold start: spawn -> initialize, median of 15 (finout-mcp --demo / bare MCPServer)",
            f"{ms(m_demo):.0f} ms / {ms(m_bare):.0f} ms = {ratio:.2f}x",
            "<= 1.15x bare",
            ratio <= 1.15,
            {"demo_ms": [ms(t) for t in t_demo], "bare_ms": [ms(t) for t in t_bare], "ratio": round(ratio, 3)},
        )
    ]


# --------------------------------------------------------------------------- 2. per-call overhead


async def bench_overhead(api: str, n: int = 200) -> list[Row]:
    async with session(api) as client, httpx.AsyncClient(headers=AUTH, timeout=30) as http:

        async def direct() -> None:
            r = await http.get(f"{api}/view")
            r.raise_for_status()
            r.json()

        async def via_mcp() -> None:
            await call(client, "list_views", {"refresh": True})

        for _ in range(20):  # warm both paths (connections, caches, JIT-less but lazy imports)
            await direct()
            await via_mcp()
        t_mcp: list[float] = []
        t_direct: list[float] = []
        for _ in range(n):
            t_mcp.append(await timed(via_mcp))
            t_direct.append(await timed(direct))
    p50 = pct(t_mcp, 50) - pct(t_direct, 50)
    p95 = pct(t_mcp, 95) - pct(t_direct, 95)
    return [
        Row(
            f"per-call overhead p50: list_views(refresh=true) over stdio minus direct GET /v1/view (n={n})",
            f"{ms(p50):.2f} ms (mcp {ms(pct(t_mcp, 50)):.2f} - direct {ms(pct(t_direct, 50)):.2f})",
            "<= 2 ms",
            p50 <= 0.002,
            {
                "mcp_p50_ms": ms(pct(t_mcp, 50)),
                "mcp_p95_ms": ms(pct(t_mcp, 95)),
                "direct_p50_ms": ms(pct(t_direct, 50)),
                "direct_p95_ms": ms(pct(t_direct, 95)),
            },
        ),
        Row(
            "per-call overhead p95 (same runs)",
            f"{ms(p95):.2f} ms (mcp {ms(pct(t_mcp, 95)):.2f} - direct {ms(pct(t_direct, 95)):.2f})",
            "(reported)",
            None,
        ),
    ]


# --------------------------------------------------------------------------- 3. long ranges


async def bench_ranges(api: str, runs: int = 3) -> list[Row]:
    control(api, "POST", "faults", {"latency_ms": 200})
    try:
        async with session(api) as client:
            views = (await call(client, "list_views", {})).structured_content["views"]
            view = views[0]["id"]
            end = datetime.now(UTC).date() - timedelta(days=1)
            long_args = {"view": view, "start": str(end - timedelta(days=365)), "end": str(end)}
            short_args = {"view": view, "start": str(end - timedelta(days=89)), "end": str(end)}
            t_long: list[float] = []
            t_short: list[float] = []
            d_long: list[float] = []
            d_short: list[float] = []
            w_long = windows_of(end - timedelta(days=365), end)
            w_short = windows_of(end - timedelta(days=89), end)
            async with httpx.AsyncClient(headers=AUTH, timeout=60) as http:
                for _ in range(runs):
                    t_short.append(await timed(lambda: call(client, "query_view_costs", short_args)))
                    control(api, "POST", "reset")
                    t_long.append(await timed(lambda: call(client, "query_view_costs", long_args)))
                    stats = control(api, "GET", "stats")
                    d_short.append(await timed(lambda: direct_costs(http, api, view, w_short)))
                    d_long.append(await timed(lambda: direct_costs(http, api, view, w_long)))
    finally:
        control(api, "POST", "faults", {"latency_ms": 0})
    m_long, m_short = statistics.median(t_long), statistics.median(t_short)
    ratio = m_long / m_short
    return [
        Row(
            "long range: 366-day query_view_costs / 90-day, latency 200 ms (median of 3)",
            f"{ms(m_long):.0f} ms / {ms(m_short):.0f} ms = {ratio:.2f}x"
            f" (direct to sandbox: {ms(statistics.median(d_long)):.0f} / {ms(statistics.median(d_short)):.0f} ms)",
            "<= 1.3x",
            ratio <= 1.3,
            {
                "long_ms": [ms(t) for t in t_long],
                "short_ms": [ms(t) for t in t_short],
                "ratio": round(ratio, 3),
                "direct_long_ms": [ms(t) for t in d_long],
                "direct_short_ms": [ms(t) for t in d_short],
                "direct_ratio": round(statistics.median(d_long) / statistics.median(d_short), 3),
                "long_requests": stats["total_requests"],
                "long_max_in_flight": stats["max_in_flight"],
            },
        )
    ]


# --------------------------------------------------------------------------- 4. throughput at the cap


async def bench_throughput(api: str, calls: int = 50, latency_ms: int = 100, rounds: int = 3) -> list[Row]:
    ideal = 5 / (latency_ms / 1000)  # Finout allows 5 requests in flight
    control(api, "POST", "faults", {"latency_ms": latency_ms})
    rates: list[float] = []
    direct_rates: list[float] = []
    limited = 0
    max_in_flight = 0
    try:
        async with session(api) as client:
            views = (await call(client, "list_views", {})).structured_content["views"]
            await call(client, "query_view_costs", {"view": views[0]["id"]})  # warm the session
            for _ in range(rounds):
                control(api, "POST", "reset")
                control(api, "POST", "faults", {"latency_ms": latency_ms})
                before = control(api, "GET", "stats")
                t0 = time.perf_counter()
                async with anyio.create_task_group() as tg:
                    for i in range(calls):  # last_30_days by default: one uncached Finout request each
                        tg.start_soon(call, client, "query_view_costs", {"view": views[i % len(views)]["id"]})
                elapsed = time.perf_counter() - t0
                stats = control(api, "GET", "stats")
                requests = stats["total_requests"] - before.get("total_requests", 0)
                rates.append(requests / elapsed)
                limited += stats["rate_limited"] - before.get("rate_limited", 0)
                max_in_flight = max(max_in_flight, stats["max_in_flight"])
            end = datetime.now(UTC).date()
            async with httpx.AsyncClient(headers=AUTH, timeout=60) as http:
                for _ in range(rounds):
                    w = [(end - timedelta(days=29), end)] * calls
                    elapsed = await timed(lambda w=w: direct_costs(http, api, views[0]["id"], w))
                    direct_rates.append(calls / elapsed)
    finally:
        control(api, "POST", "faults", {"latency_ms": 0})
    rate = statistics.median(rates)
    share = rate / ideal
    return [
        Row(
            f"throughput: {calls} concurrent query_view_costs (uncached), latency {latency_ms} ms (median of {rounds})",
            f"{rate:.1f} req/s of ideal {ideal:.0f} = {share:.0%}; 429s: {limited}; max in flight {max_in_flight};"
            f" direct to sandbox {statistics.median(direct_rates):.1f} req/s",
            ">= 90%, zero 429s",
            share >= 0.9 and limited == 0,
            {
                "rates": [round(r, 2) for r in rates],
                "direct_rates": [round(r, 2) for r in direct_rates],
                "rate_limited": limited,
                "max_in_flight": max_in_flight,
            },
        )
    ]


# --------------------------------------------------------------------------- 5. large account


async def bench_large(api: str, n: int = 30) -> list[Row]:
    async with session(api) as client:
        pids = child_pids()
        keys_args = {"search": "team"}
        values_args = {"key": "pl_pod_uid", "cost_center": "Kubernetes", "search": "4a3"}
        t_cold_keys = await timed(lambda: call(client, "list_megabill_keys", keys_args))
        t_cold_values = await timed(lambda: call(client, "list_key_values", values_args))
        some = (await call(client, "list_key_values", values_args)).structured_content
        uid = (some.get("values") or ["00000000-0000-4000-0000-000000000000"])[0]
        intent = {
            "all": [
                {"key": "pl_pod_uid", "cost_center": "Kubernetes", "op": "in", "values": [uid, "not-a-pod-uid"]},
                {"key": "Account Name", "op": "exists"},
            ]
        }
        t_keys: list[float] = []
        t_values: list[float] = []
        t_compose: list[float] = []
        searches = ["team", "cost", "app", "owner", "env", "service"]
        for i in range(n):
            t_keys.append(await timed(lambda i=i: call(client, "list_megabill_keys", {"search": searches[i % 6]})))
            t_values.append(
                await timed(lambda i=i: call(client, "list_key_values", {**values_args, "search": f"{i % 16:x}a"}))
            )
            t_compose.append(await timed(lambda: call(client, "compose_filter", {"intent": intent})))
        rss = {pid: proc_status_kb(pid, "VmHWM") for pid in pids if _is_finout(pid)}
        sandbox_rss = {pid: proc_status_kb(pid, "VmHWM") for pid in child_pids() if _is_sandbox(pid)}
    peak_mb = max(rss.values()) / 1024 if rss else float("nan")
    k50, v50, c50 = pct(t_keys, 50), pct(t_values, 50), pct(t_compose, 50)
    return [
        Row(
            "large: list_megabill_keys(search) p50, cached, 50,000 keys",
            f"{ms(k50):.2f} ms (p95 {ms(pct(t_keys, 95)):.2f}; first load {ms(t_cold_keys):.0f} ms)",
            "<= 10 ms",
            k50 <= 0.010,
        ),
        Row(
            "large: list_key_values(search) p50, cached, key with 200,000 values",
            f"{ms(v50):.2f} ms (p95 {ms(pct(t_values, 95)):.2f}; first load {ms(t_cold_values):.0f} ms)",
            "<= 10 ms",
            v50 <= 0.010,
        ),
        Row(
            "large: compose_filter p50 (in on the 200,000-value key + exists)",
            f"{ms(c50):.2f} ms (p95 {ms(pct(t_compose, 95)):.2f})",
            "(reported)",
            None,
        ),
        Row(
            "large: peak RSS of the server process (VmHWM)",
            f"{peak_mb:.1f} MB (sandbox process, not counted: {max(sandbox_rss.values(), default=0) / 1024:.0f} MB)",
            "<= 150 MB",
            peak_mb <= 150,
            {"server_vmhwm_kb": rss, "sandbox_vmhwm_kb": sandbox_rss},
        ),
    ]


def _cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _is_finout(pid: int) -> bool:
    """The MCP server (not the sandbox, which is also a `finout-mcp` child)."""
    argv = _cmdline(pid)
    return any(a.endswith(b"finout-mcp") for a in argv) and b"sandbox" not in argv


def _is_sandbox(pid: int) -> bool:
    return b"sandbox" in _cmdline(pid)


# --------------------------------------------------------------------------- 6. context footprint


async def bench_context(api: str) -> list[Row]:
    rows: list[Row] = []
    async with session(api) as client:
        tools = (await client.list_tools()).tools
        tools_json = json.dumps(
            [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools], separators=(",", ":")
        )
        size = len(tools_json.encode())
        rows.append(
            Row(
                f"context: tools/list, {len(tools)} tools (JSON of the tools array)",
                f"{size / 1024:.1f} KB ({size} B)",
                "<= 20 KB, 19 tools",
                size <= 20 * 1024 and len(tools) == 19,
                {"per_tool_bytes": {t.name: sent_bytes(t) for t in tools}},
            )
        )
        views = (await call(client, "list_views", {})).structured_content["views"]
        tags = (await call(client, "list_virtual_tags", {"limit": 1000})).structured_content
        tag_ids = [t["id"] for t in tags["tags"]]
        scans = (await call(client, "list_costguard_scans", {})).structured_content
        scan_ids = [s["id"] for s in scans["scans"]]
        cases: list[tuple[str, list[dict[str, Any]]]] = [
            ("list_views", [{}]),
            ("query_view_costs", [{"view": v["id"], "period": "last_12_months"} for v in views]),
            ("list_megabill_keys", [{}]),
            (
                "list_key_values",
                [{"key": "Account Name"}, {"key": "service", "cost_center": "AWS"}, {"key": "pl_app"}],
            ),
            ("get_virtual_tag", [{"tag": t} for t in tag_ids]),
            ("list_costguard_scans", [{}]),
            ("get_scan_recommendations", [{"scan": s} for s in scan_ids]),
            ("list_endpoints", [{}]),
        ]
        worst_overall = 0
        for tool, arg_sets in cases:
            worst, worst_args, worst_text = 0, {}, 0
            for args in arg_sets:
                result = await call(client, tool, args)
                b = sent_bytes(result)
                if b > worst:
                    text = sum(len(getattr(c, "text", "").encode()) for c in result.content)
                    worst, worst_args, worst_text = b, args, text
            worst_overall = max(worst_overall, worst)
            label = tool if len(arg_sets) == 1 else f"{tool} (largest of {len(arg_sets)})"
            rows.append(
                Row(
                    f"context: default answer of {label}",
                    f"{worst / 1024:.1f} KB as sent (text part {worst_text / 1024:.1f} KB)",
                    "<= 16 KB",
                    worst <= 16 * 1024,
                    {"bytes": worst, "text_bytes": worst_text, "args": worst_args},
                )
            )
    return rows


# --------------------------------------------------------------------------- main

FIGURES = ["cold", "overhead", "ranges", "throughput", "large", "context", "writes"]


# --------------------------------------------------------------------------- 7. safe writes


async def bench_writes(api: str, n: int = 40) -> list[Row]:
    """Latency the write checks add: one update_virtual_tag (dry-run-free apply) through the server
    against the bare GET + PUT of the same change sent directly, alternating two default values so
    every write is a real change. Also counts the Finout requests each costs."""
    async with session(api) as client, httpx.AsyncClient(headers=AUTH, timeout=30) as http:
        tags = (await http.get(f"{api}/virtual-tags")).json()["virtualTags"]
        env = next(t for t in tags if t["name"] == "Environment")
        url = f"{api}/virtual-tags/{env['id']}"
        values = iter(f"bench-{i}" for i in range(10 * n))

        async def direct() -> None:
            tag = (await http.get(url)).json()
            body = {"name": tag["name"], "rules": strip_display_names(tag["rules"]), "defaultValue": next(values)}
            (await http.put(url, json=body)).raise_for_status()

        async def via_mcp() -> None:
            await call(client, "update_virtual_tag", {"tag": "Environment", "default_value": next(values)})

        for _ in range(5):
            await direct()
            await via_mcp()
        t_mcp: list[float] = []
        t_direct: list[float] = []
        control(api, "POST", "reset")
        before = control(api, "GET", "stats")["total_requests"]
        for _ in range(n):
            t_mcp.append(await timed(via_mcp))
        per_write = (control(api, "GET", "stats")["total_requests"] - before) / n
        for _ in range(n):
            t_direct.append(await timed(direct))
    added = pct(t_mcp, 50) - pct(t_direct, 50)
    return [
        Row(
            f"write checks: update_virtual_tag p50 over stdio minus direct GET+PUT p50 (n={n}, no injected latency)",
            f"{ms(added):.1f} ms (mcp {ms(pct(t_mcp, 50)):.1f} - direct {ms(pct(t_direct, 50)):.1f}; "
            f"p95 {ms(pct(t_mcp, 95)):.1f} / {ms(pct(t_direct, 95)):.1f})",
            "(reported)",
            None,
            {"mcp_ms": [ms(t) for t in t_mcp], "direct_ms": [ms(t) for t in t_direct]},
        ),
        Row(
            "write checks: Finout requests per update_virtual_tag (direct: 2)",
            f"{per_write:.1f}",
            "(reported)",
            None,
        ),
    ]


async def guarded(name: str, fn: Callable[[], Awaitable[list[Row]]]) -> list[Row]:
    """Run one figure; a crash becomes a failed row (with the error) instead of ending the run."""
    log(name)
    t0 = time.perf_counter()
    try:
        rows = await fn()
    except Exception as exc:
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]  # type: ignore[assignment]
        log(f"{name}: FAILED: {exc!r}")
        return [Row(name, f"error: {str(exc)[:200]}", "runs", False)]
    log(f"{name}: {time.perf_counter() - t0:.1f} s")
    return rows


async def run(only: list[str]) -> list[Row]:
    rows: list[Row] = []
    if "cold" in only:
        rows += await guarded("cold start", bench_cold)
    if {"overhead", "ranges", "throughput", "context", "writes"} & set(only):
        with sandbox() as api:
            if "overhead" in only:
                rows += await guarded("per-call overhead", lambda: bench_overhead(api))
            if "ranges" in only:
                rows += await guarded("long ranges", lambda: bench_ranges(api))
            if "throughput" in only:
                rows += await guarded("throughput", lambda: bench_throughput(api))
            if "context" in only:
                rows += await guarded("context footprint", lambda: bench_context(api))
            if "writes" in only:
                rows += await guarded("safe writes", lambda: bench_writes(api))
    if "large" in only:
        with sandbox("--scale", "large") as api:
            rows += await guarded("large account", lambda: bench_large(api))
    return rows


def machine() -> dict[str, Any]:
    return {
        "uname": " ".join(platform.uname()),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def print_table(rows: list[Row]) -> None:
    w_fig = max(len(r.figure) for r in rows)
    w_val = max(len(r.value) for r in rows)
    w_goal = max(len(r.goal) for r in rows)
    print(f"{'figure':<{w_fig}}  {'value':<{w_val}}  {'goal':<{w_goal}}  met?")
    print(f"{'-' * w_fig}  {'-' * w_val}  {'-' * w_goal}  ----")
    for r in rows:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        print(f"{r.figure:<{w_fig}}  {r.value:<{w_val}}  {r.goal:<{w_goal}}  {met}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown (for BENCHMARKS.md)")
    p.add_argument("--only", default=",".join(FIGURES), help=f"comma-separated subset of {','.join(FIGURES)}")
    args = p.parse_args()
    only = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = set(only) - set(FIGURES)
    if unknown:
        p.error(f"unknown figure(s): {', '.join(sorted(unknown))}")
    t0 = time.perf_counter()
    rows = anyio.run(run, only)
    info = machine() | {"runtime_s": round(time.perf_counter() - t0, 1)}
    print(f"# {info['uname']} | {info['cpus']} CPUs | Python {info['python']} | {info['runtime_s']} s")
    if args.markdown:
        print("| figure | value | goal | met? |\n|---|---|---|---|")
        for r in rows:
            met = "–" if r.met is None else ("yes" if r.met else "**no**")
            print(f"| {r.figure} | {r.value} | {r.goal} | {met} |")
    else:
        print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "rows": [asdict(r) for r in rows]}, indent=2))
        log(f"wrote {args.json}")
    return 1 if any(r.met is False for r in rows) and os.environ.get("BENCH_STRICT") else 0


if __name__ == "__main__":
    sys.exit(main())
