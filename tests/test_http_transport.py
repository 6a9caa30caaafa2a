"""The HTTP transports end to end: bearer token, DNS-rebinding protection, stateless replicas, SSE.

Every server of this module boots once, all in parallel (``servers`` fixture).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.conftest import FinoutProcess, serve, start_http
from tests.support import READ_TOOLS, WRITE_TOOLS

pytestmark = pytest.mark.slow

TOKEN = f"tok-{secrets.token_hex(16)}"  # distinctive, so a leak into the logs cannot hide
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROTOCOL = "2025-06-18"
LB_HOST = "mcp.lb.example"
MCP_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
}


def initialize_msg(rid: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": rid,
        "method": "initialize",
        "params": {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FinoutProcess]]:
    tmp = tmp_path_factory.mktemp("http")
    procs = {
        # The deployment shape: every interface, a token, and the load balancer's name allowed.
        "http_tok": start_http(
            tmp,
            "http_tok",
            "--transport",
            "streamable-http",
            "--host",
            "0.0.0.0",
            "--allowed-host",
            LB_HOST,
            "--log-level",
            "DEBUG",
            FINOUT_MCP_AUTH_TOKEN=TOKEN,
        ),
        "http_open": start_http(tmp, "http_open", "--transport", "streamable-http"),
        "sse_tok": start_http(
            tmp, "sse_tok", "--transport", "sse", "--log-level", "DEBUG", FINOUT_MCP_AUTH_TOKEN=TOKEN
        ),
        "sse_open": start_http(tmp, "sse_open", "--transport", "sse"),
        "stateless_a": start_http(tmp, "stateless_a", "--transport", "streamable-http", "--stateless"),
        "stateless_b": start_http(tmp, "stateless_b", "--transport", "streamable-http", "--stateless"),
    }
    with serve(*procs.values()):
        yield procs


@asynccontextmanager
async def mcp_client(proc: FinoutProcess, headers: dict[str, str] | None = None) -> Any:
    """An MCP client for ``proc``'s transport (streamable HTTP at /mcp, SSE at /sse)."""
    if "sse" in proc.args:
        async with Client(sse_client(f"{proc.url}/sse", headers=headers)) as client:
            yield client
    else:
        async with (
            create_mcp_http_client(headers=headers) as http,
            Client(streamable_http_client(f"{proc.url}/mcp", http_client=http)) as client,
        ):
            yield client


async def list_and_call(client: Client) -> None:
    tools = {t.name for t in (await client.list_tools()).tools}
    assert tools == READ_TOOLS | WRITE_TOOLS
    result = await client.call_tool("list_views", {})
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["views"]


def endpoint(proc: FinoutProcess) -> str:
    return f"{proc.url}/sse" if "sse" in proc.args else f"{proc.url}/mcp"


# --- bearer token -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["http_tok", "sse_tok"])
def test_token_required(servers: dict[str, FinoutProcess], name: str) -> None:
    url = endpoint(servers[name])
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}):
        r = httpx.post(url, json=initialize_msg(), headers={**MCP_HEADERS, **headers}, timeout=10)
        assert r.status_code == 401, (headers, r.status_code)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in r.text
    r = httpx.get(url.replace("/mcp", "/").replace("/sse", "/messages/"), timeout=10)
    assert r.status_code == 401  # every path, not just the MCP endpoint


async def test_streamable_http_with_token(servers: dict[str, FinoutProcess]) -> None:
    async with mcp_client(servers["http_tok"], AUTH) as client:
        await list_and_call(client)


async def test_sse_with_token(servers: dict[str, FinoutProcess]) -> None:
    async with mcp_client(servers["sse_tok"], AUTH) as client:
        await list_and_call(client)


async def test_streamable_http_on_loopback_without_token(servers: dict[str, FinoutProcess]) -> None:
    async with Client(f"{servers['http_open'].url}/mcp") as client:
        await list_and_call(client)


async def test_sse_on_loopback_without_token(servers: dict[str, FinoutProcess]) -> None:
    async with mcp_client(servers["sse_open"]) as client:
        await list_and_call(client)


async def test_token_never_logged(servers: dict[str, FinoutProcess]) -> None:
    for name in ("http_tok", "sse_tok"):
        proc = servers[name]
        async with mcp_client(proc, AUTH) as client:
            await client.call_tool("list_views", {})
        async with httpx.AsyncClient(timeout=10) as http:
            for headers in (AUTH, {"Authorization": "Bearer wrong"}, {**AUTH, "Host": "evil.example"}):
                await http.post(endpoint(proc), json=initialize_msg(), headers={**MCP_HEADERS, **headers})
        log = proc.stderr()
        assert "DEBUG" in log  # it really logged verbosely
        assert TOKEN not in log
        assert TOKEN[4:] not in log


# --- DNS-rebinding protection -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["http_tok", "http_open", "stateless_a"])
def test_foreign_host_and_origin_rejected(servers: dict[str, FinoutProcess], name: str) -> None:
    proc = servers[name]
    url = endpoint(proc)
    base = {**MCP_HEADERS, **AUTH}
    good = httpx.post(url, json=initialize_msg(), headers=base, timeout=10)
    assert good.status_code == 200, good.text
    for bad in ({"Host": "evil.example"}, {"Origin": "http://evil.example"}):
        r = httpx.post(url, json=initialize_msg(), headers={**base, **bad}, timeout=10)
        assert not r.is_success, (bad, r.status_code)
        assert r.status_code in (400, 403, 421), (bad, r.status_code)
    ok_origin = httpx.post(
        url, json=initialize_msg(), headers={**base, "Origin": f"http://127.0.0.1:{proc.port}"}, timeout=10
    )
    assert ok_origin.status_code == 200


def test_allowed_host_admits_the_load_balancer_name(servers: dict[str, FinoutProcess]) -> None:
    url = endpoint(servers["http_tok"])
    for extra in ({"Host": LB_HOST}, {"Host": LB_HOST, "Origin": f"https://{LB_HOST}"}):
        r = httpx.post(url, json=initialize_msg(), headers={**MCP_HEADERS, **AUTH, **extra}, timeout=10)
        assert r.status_code == 200, (extra, r.status_code)
    r = httpx.post(url, json=initialize_msg(), headers={**MCP_HEADERS, "Host": LB_HOST}, timeout=10)
    assert r.status_code == 401  # an allowed name does not replace the token


def test_sse_foreign_host_rejected(servers: dict[str, FinoutProcess]) -> None:
    proc = servers["sse_tok"]
    for bad in ({"Host": "evil.example"}, {"Origin": "http://evil.example"}):
        with httpx.stream("GET", f"{proc.url}/sse", headers={**AUTH, **bad}, timeout=10) as r:
            assert not r.is_success, (bad, r.status_code)


# --- stateless replicas -----------------------------------------------------------------------


def test_stateless_replicas_need_no_session_affinity(servers: dict[str, FinoutProcess]) -> None:
    a, b = servers["stateless_a"], servers["stateless_b"]
    headers = {**MCP_HEADERS, "MCP-Protocol-Version": PROTOCOL}
    init = httpx.post(f"{a.url}/mcp", json=initialize_msg(), headers=MCP_HEADERS, timeout=10)
    assert init.status_code == 200
    assert "mcp-session-id" not in init.headers  # nothing to be sticky about
    assert init.json()["result"]["serverInfo"]["name"] == "finout-mcp"
    # Initialized on A; every later request may land on either replica.
    for rid, proc in enumerate([b, a, b], start=2):
        call = {
            "jsonrpc": "2.0",
            "id": rid,
            "method": "tools/call",
            "params": {"name": "list_views", "arguments": {}},
        }
        r = httpx.post(f"{proc.url}/mcp", json=call, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["id"] == rid
        assert body["result"]["isError"] is False
        assert body["result"]["structuredContent"]["views"]


async def test_stateless_replicas_with_the_sdk_client(servers: dict[str, FinoutProcess]) -> None:
    for name in ("stateless_a", "stateless_b"):
        async with Client(f"{servers[name].url}/mcp") as client:
            await list_and_call(client)


# --- the README's curl check ---------------------------------------------------------------------


def readme_curl_block() -> str:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    marker = readme.index("<!-- readme-curl-check")
    start = readme.index("```bash\n", marker) + len("```bash\n")
    return readme[start : readme.index("```", start)]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize(("name", "token"), [("http_tok", TOKEN), ("http_open", "")])
def test_readme_curl_sequence_works_on_the_default_stateful_server(
    servers: dict[str, FinoutProcess], name: str, token: str
) -> None:
    """Exactly the README's commands (only the port differs): initialize, session header, a tool call."""
    block = readme_curl_block()
    assert "127.0.0.1:8000" in block and "Mcp-Session-Id" in block
    script = block.replace("127.0.0.1:8000", f"127.0.0.1:{servers[name].port}")
    env = {"PATH": os.environ["PATH"], "FINOUT_MCP_AUTH_TOKEN": token}
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    events = [json.loads(ln[len("data: ") :]) for ln in run.stdout.splitlines() if ln.startswith("data: ")]
    answer = next((e for e in events if e.get("id") == 2), None)
    assert answer is not None, run.stdout
    assert answer["result"]["isError"] is False, answer
    assert answer["result"]["structuredContent"]["views"], answer
    assert "Missing session ID" not in run.stdout + run.stderr
