"""The HTTP server a team shares, attacked: slowloris, session floods, SSE clients that leave.

Each server runs as a real ``finout-mcp`` subprocess on loopback with small limits (so the
floods stay small and quick). While a flood runs a legitimate client keeps working; the
figures printed (``-s``) are the ones quoted in BENCHMARKS.md: connections (open descriptors),
sessions and memory held by the server under each flood.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import FinoutProcess, free_port, serve, server_env, start_http
from tests.support import READ_TOOLS, WRITE_TOOLS, report

pytestmark = pytest.mark.slow

PROTOCOL = "2025-06-18"
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
LIMITS = {
    "FINOUT_MCP_MAX_CONNECTIONS": "64",
    "FINOUT_MCP_HEADER_TIMEOUT": "2",
    "FINOUT_MCP_BODY_TIMEOUT": "2",
    "FINOUT_MCP_MAX_SESSIONS": "30",
    "FINOUT_MCP_MAX_SESSIONS_PER_CLIENT": "5",
    "FINOUT_MCP_SESSION_IDLE_TIMEOUT": "3",
}


def initialize_msg(rid: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": rid,
        "method": "initialize",
        "params": {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }


def held(proc: FinoutProcess) -> tuple[int, int]:
    """(open file descriptors, resident memory in KiB) of the server process."""
    pid = proc.proc.pid
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return fds, rss


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FinoutProcess]]:
    tmp = tmp_path_factory.mktemp("team")
    procs = {
        "http": start_http(tmp, "http", "--transport", "streamable-http", "--log-level", "INFO", **LIMITS),
        "sse": start_http(tmp, "sse", "--transport", "sse", "--log-level", "INFO", **LIMITS),
    }
    with serve(*procs.values()):
        yield procs


async def legit_round(url: str, local_address: str = "127.0.0.1") -> None:
    """What a real user does: open a session, list the tools, call one, close."""
    async with (
        httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(local_address=local_address), timeout=httpx.Timeout(30.0)
        ) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} == READ_TOOLS | WRITE_TOOLS
        result = await client.call_tool("list_views", {})
        assert not result.is_error


async def test_slowloris_is_bounded_and_a_real_client_is_served_throughout(
    servers: dict[str, FinoutProcess],
) -> None:
    proc = servers["http"]
    fds_before, rss_before = held(proc)
    writers: list[asyncio.StreamWriter] = []
    peak_fds, peak_rss = fds_before, rss_before
    stop = anyio.Event()

    async def attacker() -> None:
        # 400 connections that send half a request head and then a byte now and then.
        for i in range(400):
            with contextlib.suppress(OSError):
                _r, w = await asyncio.open_connection("127.0.0.1", proc.port)
                w.write(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                writers.append(w)
            if i % 50 == 0:
                await anyio.sleep(0.05)
        while not stop.is_set():
            for w in writers:
                with contextlib.suppress(Exception):
                    w.write(b"a")
            await anyio.sleep(0.5)

    served = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(attacker)
        for _ in range(8):
            await anyio.sleep(0.5)
            await legit_round(proc.url)  # never refused, never timed out
            served += 1
            fds, rss = held(proc)
            peak_fds, peak_rss = max(peak_fds, fds), max(peak_rss, rss)
        stop.set()

    # The server held at most its connection cap (64) plus its own descriptors, whatever came in.
    assert peak_fds <= fds_before + 64 + 8, (fds_before, peak_fds)
    # Every slow connection is closed by the server: evicted, or at the header deadline.
    with anyio.fail_after(30):
        while held(proc)[0] > fds_before + 2:  # noqa: ASYNC110 - another process's descriptors
            await anyio.sleep(0.2)
    for w in writers:
        w.close()
    report(
        f"\nslowloris: 400 slow connections; server fds {fds_before} -> peak {peak_fds}, "
        f"RSS {rss_before // 1024} -> peak {peak_rss // 1024} MiB; legitimate rounds served {served}/8"
    )
    assert served == 8
    log = proc.stderr()
    assert "Traceback" not in log
    assert log.count("\n") < 200  # a flood is summarised, not logged line by line


async def test_session_flood_is_capped_per_client_and_in_total(tmp_path: Path) -> None:
    proc = start_http(
        tmp_path, "flood", "--transport", "streamable-http", **{**LIMITS, "FINOUT_MCP_SESSION_IDLE_TIMEOUT": "300"}
    )
    with serve(proc):
        url = f"{proc.url}/mcp"
        _, rss_before = held(proc)
        opened = refused = 0
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(300):  # one client opening sessions and never closing them
                r = await http.post(url, json=initialize_msg(), headers=MCP_HEADERS)
                if r.status_code == 200:
                    opened += 1
                else:
                    assert r.status_code == 503, r.text
                    refused += 1
        assert opened == 5 and refused == 295  # FINOUT_MCP_MAX_SESSIONS_PER_CLIENT
        # Another client (another source address) is still served in full.
        await legit_round(proc.url, local_address="127.0.0.2")

        # Many clients: at most FINOUT_MCP_MAX_SESSIONS in total.
        total = 0
        for n in range(3, 20):
            transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{n}")
            async with httpx.AsyncClient(transport=transport, timeout=10) as http:
                for _ in range(5):
                    r = await http.post(url, json=initialize_msg(), headers=MCP_HEADERS)
                    total += r.status_code == 200
        fds, rss = held(proc)
        assert 5 + total == 30
        report(
            f"\nsession flood: 300 initialize from one client -> {opened} sessions, {refused} refused (503); "
            f"85 from 17 others -> {total}; server RSS {rss_before // 1024} -> {rss // 1024} MiB, fds {fds}"
        )
        assert "Traceback" not in proc.stderr()


async def test_idle_sessions_are_closed(servers: dict[str, FinoutProcess]) -> None:
    """After FINOUT_MCP_SESSION_IDLE_TIMEOUT (3 s here) an idle session is gone, and its room free."""
    proc = servers["http"]
    url = f"{proc.url}/mcp"
    async with httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address="127.0.0.9"), timeout=10
    ) as http:
        ids = []
        for _ in range(6):
            r = await http.post(url, json=initialize_msg(), headers=MCP_HEADERS)
            if r.status_code == 200:
                ids.append(r.headers["mcp-session-id"])
        assert len(ids) == 5
        # Refused until the idle ones are closed (a refused initialize touches no session)...
        with anyio.fail_after(60):
            while (await http.post(url, json=initialize_msg(), headers=MCP_HEADERS)).status_code != 200:  # noqa: ASYNC110
                await anyio.sleep(0.5)
        # ...and then the first one is gone.
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        headers = {**MCP_HEADERS, "mcp-session-id": ids[0], "mcp-protocol-version": PROTOCOL}
        assert (await http.post(url, json=ping, headers=headers)).status_code == 404


async def test_a_slow_body_is_cut_off(servers: dict[str, FinoutProcess]) -> None:
    proc = servers["http"]
    reader, writer = await asyncio.open_connection("127.0.0.1", proc.port)
    writer.write(
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
        b"Accept: application/json, text/event-stream\r\nContent-Length: 100000\r\n\r\n{" % proc.port
    )
    await writer.drain()
    with anyio.fail_after(30):  # FINOUT_MCP_BODY_TIMEOUT is 2 s: the server hangs up
        while await reader.read(65536):
            pass
    writer.close()


async def test_two_sse_clients_share_one_server_state(servers: dict[str, FinoutProcess]) -> None:
    """When one SSE client leaves, the other keeps reading resources, completing and calling tools."""
    url = f"{servers['sse'].url}/sse"
    async with Client(sse_client(url)) as staying:
        async with Client(sse_client(url)) as leaving:
            assert not (await leaving.call_tool("list_views", {})).is_error
        # `leaving` has disconnected.
        views = await staying.read_resource("finout://views")
        assert views.contents and "Server is still starting" not in str(views.contents)
        result = await staying.call_tool("list_views", {})
        assert not result.is_error
        templates = await staying.list_resource_templates()
        keys = next(t for t in templates.resource_templates if "values" in t.uri_template)
        from mcp.types import ResourceTemplateReference

        completion = await staying.complete(
            ResourceTemplateReference(type="ref/resource", uri=keys.uri_template),
            {"name": "cost_center", "value": "A"},
        )
        assert completion.completion.values  # not empty
    assert "still starting" not in servers["sse"].stderr()


async def test_sse_clients_share_one_request_limit(tmp_path: Path) -> None:
    """Three SSE clients calling at once: Finout (a sandbox on its own port) never sees more than
    5 requests in flight, because every connection uses the same limiter."""
    port = free_port()
    sandbox = FinoutProcess(
        ["sandbox", "--port", str(port), "--latency-ms", "150"],
        server_env(tmp_path / "sb"),
        tmp_path / "sandbox.stderr",
        port=port,
    )
    env = {
        "FINOUT_API_URL": f"http://127.0.0.1:{port}/v1",
        "FINOUT_CLIENT_ID": "team-client",
        "FINOUT_SECRET_KEY": "team-secret-0123456789",
    }
    mcp_port = free_port()
    (tmp_path / "st").mkdir()
    server = FinoutProcess(
        ["--transport", "sse", "--port", str(mcp_port)],
        server_env(tmp_path / "st", **env),
        tmp_path / "sse.stderr",
        port=mcp_port,
    )
    with serve(sandbox, server):
        failures: list[str] = []

        async def one_client() -> None:
            async with (
                Client(sse_client(f"http://127.0.0.1:{mcp_port}/sse")) as client,
                anyio.create_task_group() as tg,
            ):
                for _ in range(5):

                    async def call() -> None:
                        r = await client.call_tool("list_views", {"refresh": True})
                        if r.is_error:
                            failures.append(str(r.content)[:200])

                    tg.start_soon(call)

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(one_client)
        async with httpx.AsyncClient(timeout=10) as http:
            stats = (await http.get(f"http://127.0.0.1:{port}/_sandbox/stats")).json()
    assert not failures
    assert stats["max_in_flight"] <= 5 and stats["rate_limited"] == 0, stats


def test_healthz_needs_no_token_and_never_calls_finout(tmp_path: Path) -> None:
    token = "tok-" + "9" * 32
    proc = start_http(
        tmp_path,
        "health",
        "--transport",
        "streamable-http",
        FINOUT_MCP_AUTH_TOKEN=token,
        FINOUT_API_URL="http://127.0.0.1:9/v1",
    )
    with serve(proc):
        r = httpx.get(f"{proc.url}/healthz", timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert httpx.get(f"{proc.url}/mcp", timeout=10).status_code == 401  # the rest still needs the token


def test_ipv6_loopback(tmp_path: Path) -> None:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    proc = start_http(tmp_path, "v6", "--transport", "streamable-http", "--host", "::1")
    import time

    deadline = time.monotonic() + 30
    while True:
        assert proc.proc.poll() is None, proc.stderr()
        try:
            r = httpx.post(f"http://[::1]:{proc.port}/mcp", json=initialize_msg(), headers=MCP_HEADERS, timeout=5)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, proc.stderr()
            time.sleep(0.1)
    try:
        assert r.status_code == 200, r.text
        assert f"http://[::1]:{proc.port}/mcp" in proc.stderr()
    finally:
        proc.stop()


def test_no_credentials_of_a_url_in_the_log(tmp_path: Path) -> None:
    password = "pw-" + "7" * 24
    port = free_port()
    (tmp_path / "state").mkdir()
    env = server_env(
        tmp_path / "state",
        FINOUT_CLIENT_ID="someone",
        FINOUT_SECRET_KEY="secret-" + "1" * 20,
        FINOUT_API_URL=f"http://user:{password}@127.0.0.1:9/v1",
        FINOUT_MCP_DATABASE_URL=f"postgresql://finout:{password}@db.invalid/finout",
    )
    proc = FinoutProcess(
        ["--transport", "streamable-http", "--port", str(port), "--log-level", "DEBUG"],
        env,
        tmp_path / "urlpw.stderr",
        port=port,
    )
    with serve(proc):
        r = httpx.post(f"{proc.url}/mcp", json=initialize_msg(), headers=MCP_HEADERS, timeout=10)
        assert r.status_code == 200
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "list_views", "arguments": {}},
        }
        headers = {**MCP_HEADERS, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": PROTOCOL}
        answer = httpx.post(f"{proc.url}/mcp", json=call, headers=headers, timeout=60)
        assert password not in answer.text
    log = proc.stderr_path.read_text()
    assert "ready" in log  # the line that used to print FINOUT_API_URL whole
    assert password not in log and password[:12] not in log
