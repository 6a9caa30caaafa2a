"""End to end over stdio: ``python -m finout_mcp --demo`` as a subprocess, driven by the MCP client."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import finout_cmd, server_env
from tests.support import READ_TOOLS, WRITE_TOOLS

pytestmark = pytest.mark.slow

ALL_TOOLS = READ_TOOLS | WRITE_TOOLS


def stdio_params(tmp_path: Path, *args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "finout_mcp", "--demo", *args], env=server_env(tmp_path)
    )


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text if result.content else result
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def test_demo_lists_all_tools_and_answers_with_real_data(tmp_path: Path) -> None:
    async with Client(stdio_params(tmp_path)) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == ALL_TOOLS

        views = structured(await client.call_tool("list_views", {}))
        assert views["views"], views
        first = views["views"][0]["name"]
        assert isinstance(first, str) and first

        costs = structured(await client.call_tool("query_view_costs", {"view": first, "period": "last_month"}))
        text = json.dumps(costs)
        assert first in text
        assert costs["total"] > 0, costs

        values = structured(await client.call_tool("list_key_values", {"key": "pl_app"}))
        assert values["key"] == "pl_app"
        assert values["values"], values
        assert all(isinstance(v, str) and v for v in values["values"])


async def test_read_only_lists_no_write_tool(tmp_path: Path) -> None:
    async with Client(stdio_params(tmp_path, "--read-only")) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
    assert tools == ALL_TOOLS - WRITE_TOOLS
    assert len(tools) == len(READ_TOOLS)
    assert not {
        t for t in tools if t.startswith(("create_", "update_", "clone_", "delete_")) or t == "undo_change"
    }


async def test_toolsets_limit_the_listed_tools(tmp_path: Path) -> None:
    async with Client(stdio_params(tmp_path, "--toolsets", "views,costguard")) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == {
            "list_views",
            "query_view_costs",
            "list_costguard_scans",
            "get_scan_recommendations",
            "summarize_savings",
        }
        scans = structured(await client.call_tool("list_costguard_scans", {}))
        assert scans


def test_stdout_carries_only_json_rpc(tmp_path: Path) -> None:
    """Logs at DEBUG, a request, a bad line: still nothing but JSON-RPC on stdout."""
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            finout_cmd("--demo", "--log-level", "DEBUG"),
            env=server_env(tmp_path),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "0"},
            },
        }
        proc.stdin.write((json.dumps(init) + "\n").encode())
        proc.stdin.flush()
        first = _read_line(proc, timeout=30)
        reply = json.loads(first)
        assert reply["id"] == 1 and reply["result"]["serverInfo"]["name"] == "finout-mcp"

        for msg in (
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_views", "arguments": {}}},
        ):
            proc.stdin.write((json.dumps(msg) + "\n").encode())
        proc.stdin.flush()
        replies: dict[int, dict[str, Any]] = {}
        while len(replies) < 2:
            line = json.loads(_read_line(proc, timeout=30))
            if "id" in line:
                replies[line["id"]] = line
        assert len(replies[2]["result"]["tools"]) == len(ALL_TOOLS)
        assert replies[3]["result"]["isError"] is False
    finally:
        proc.stdin.close()  # EOF: the server shuts down on its own
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        rest = proc.stdout.read()
        proc.stdout.close()
    for line in rest.decode().splitlines():
        if line.strip():
            json.loads(line)  # anything that is not JSON-RPC would break the client
    assert proc.returncode == 0
    assert "DEBUG" in stderr_path.read_text()  # the logs went to stderr


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            assert line, f"server closed stdout (exit {proc.poll()})"
            return line
        assert proc.poll() is None, f"server exited with {proc.returncode}"
    raise TimeoutError("no line on stdout")


def test_a_request_too_deep_to_parse_still_gets_an_answer(tmp_path: Path) -> None:
    """The SDK drops a line it cannot parse; the client would wait for that id forever."""
    proc = subprocess.Popen(
        finout_cmd("--demo"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=server_env(tmp_path / "state"),
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        intent = '{"key":"pl_app","op":"exists"}'
        for _ in range(10_000):
            intent = '{"not":' + intent + "}"
        lines = [
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {},
                        "clientInfo": {"name": "t", "version": "1"},
                    },
                }
            ),
            json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"compose_filter","arguments":{"intent":'
            + intent
            + "}}}",
            "{this is not json",
            json.dumps({"jsonrpc": "2.0", "id": 3, "method": "ping"}),
        ]
        proc.stdin.write("\n".join(lines) + "\n")
        proc.stdin.flush()
        answers = {}
        watchdog = threading.Timer(30, proc.kill)  # no answer: the read ends and the test fails, not hangs
        watchdog.start()
        try:
            while 3 not in answers:
                line = proc.stdout.readline()
                assert line, f"the server stopped answering; got {sorted(answers, key=str)}"
                message = json.loads(line)
                answers[message.get("id")] = message
        finally:
            watchdog.cancel()
        assert answers[2]["error"]["code"] == -32700 and "nested" in answers[2]["error"]["message"]
        assert answers[3]["result"] == {}  # and the server goes on serving
    finally:
        proc.kill()
        proc.wait()


def _handshake_and(*requests: dict[str, Any]) -> bytes:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "pipe", "version": "0"},
        },
    }
    lines = [init, {"jsonrpc": "2.0", "method": "notifications/initialized"}, *requests]
    return b"".join(json.dumps(m).encode() + b"\n" for m in lines)


def test_stdin_eof_answers_every_request_read_before_it(tmp_path: Path) -> None:
    """`printf ... | finout-mcp --demo`: the pipe closes at once; no answer may be lost (50 runs)."""
    piped = _handshake_and(
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_views", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 4, "method": "prompts/get", "params": {"name": "find_savings"}},
    )
    lost: list[str] = []
    runs, batch = 50, 5  # a few at a time: each run is a whole interpreter start on a shared machine
    for first in range(0, runs, batch):
        procs = [
            subprocess.Popen(
                finout_cmd("--demo"),
                env=server_env(tmp_path / f"state-{n}"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for n in range(first, min(first + batch, runs))
        ]
        for n, proc in enumerate(procs, start=first):
            out, err = proc.communicate(piped, timeout=120)  # writes everything, then closes stdin
            answers = {m.get("id"): m for m in map(json.loads, out.decode().splitlines())}
            for rid in (1, 2, 3, 4):
                if "result" not in answers.get(rid, {}):
                    lost.append(f"run {n}: id {rid} -> {answers.get(rid)}")
            assert proc.returncode == 0, (n, proc.returncode, err.decode()[-2000:])
            assert b"Traceback" not in err, err.decode()[-2000:]
            assert len(answers[2]["result"]["tools"]) == len(ALL_TOOLS)
    assert lost == [], lost


def test_ctrl_c_in_a_terminal_exits_at_once_with_code_0(tmp_path: Path) -> None:
    """A person typed `finout-mcp --demo` in a terminal and presses Ctrl-C, as the hint says."""
    leader, follower = pty.openpty()

    def own_terminal() -> None:  # a session of its own, with the pty as controlling terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        finout_cmd("--demo"),
        env=server_env(tmp_path),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        start_new_session=True,
        preexec_fn=own_terminal,
    )
    os.close(follower)
    screen = b""

    def read_for(seconds: float, until: bytes | None = None) -> None:
        nonlocal screen
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until and until in screen):
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    screen += os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    return

    try:
        read_for(60, until=b"press Ctrl-C to quit")
        assert b"press Ctrl-C to quit" in screen, screen.decode(errors="replace")
        os.write(leader, b"\x03")  # the terminal turns it into SIGINT for the foreground process
        try:
            code = proc.wait(timeout=30)  # before the fix it waited for Enter forever
        except subprocess.TimeoutExpired:
            pytest.fail(f"Ctrl-C did not stop the server; the terminal shows:\n{screen.decode(errors='replace')}")
        read_for(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    text = screen.decode(errors="replace")
    assert code == 0, text
    assert "Traceback" not in text and "Fatal Python error" not in text, text
