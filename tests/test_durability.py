"""Durability: a server SIGKILLed in the middle of a write leaves a change log that loads, and
``undo_change`` works from a new process.

The server runs as a real subprocess over stdio (raw JSON-RPC lines, so the test holds its
pid) against ``finout-mcp sandbox`` on a loopback port; the sandbox's control API delays the
PUT by 3 s so the kill lands while it is in flight.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FinoutProcess, free_port, server_env

pytestmark = pytest.mark.slow

PROTOCOL = "2025-06-18"


class RawStdio:
    """``python -m finout_mcp ARGS`` spoken to with raw JSON-RPC lines on stdin/stdout."""

    def __init__(self, env: dict[str, str], stderr_path: Path, *args: str) -> None:
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "finout_mcp", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        self.stdout_lines: list[str] = []
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", errors="replace")
            self.stdout_lines.append(line)
            try:
                self._queue.put(json.loads(line))
            except ValueError:
                self._queue.put({"unparsable": line})

    def send_line(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def send(self, method: str, params: dict[str, Any] | None = None, *, notify: bool = False) -> int:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params or {}}
        if not notify:
            self._next_id += 1
            msg["id"] = self._next_id
        self.send_line(json.dumps(msg))
        return self._next_id

    def wait(self, request_id: int, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to request {request_id}; stderr:\n{self.stderr()[-2000:]}")
            try:
                msg = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if msg.get("id") == request_id:
                return msg

    def request(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
        return self.wait(self.send(method, params), timeout)

    def initialize(self) -> None:
        info = {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "tests", "version": "0"}}
        answer = self.request("initialize", info, timeout=60)
        assert "result" in answer, answer
        self.send("notifications/initialized", notify=True)

    def call_tool(self, name: str, args: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        answer = self.request("tools/call", {"name": name, "arguments": args}, timeout)
        assert "result" in answer, answer
        result: dict[str, Any] = answer["result"]
        return result

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._stderr.close()


def result_text(result: dict[str, Any]) -> str:
    return "".join(c.get("text", "") for c in result.get("content", []))


def start_sandbox(tmp_path: Path) -> FinoutProcess:
    port = free_port()
    sandbox = FinoutProcess(
        ["sandbox", "--port", str(port)], server_env(tmp_path / "unused"), tmp_path / "sandbox.stderr", port=port
    )
    sandbox.wait_ready()
    return sandbox


def api_env(state: Path, sandbox: FinoutProcess, **extra: str) -> dict[str, str]:
    return server_env(
        state,
        FINOUT_API_URL=f"{sandbox.url}/v1",
        FINOUT_CLIENT_ID="durability-client",
        FINOUT_SECRET_KEY="durability-secret",
        **extra,
    )


def _tag(sandbox: FinoutProcess, name: str) -> dict[str, Any]:
    headers = {"x-finout-client-id": "probe", "x-finout-secret-key": "probe"}
    tags = httpx.get(f"{sandbox.url}/v1/virtual-tags", headers=headers, timeout=10).json()["virtualTags"]
    found: dict[str, Any] = next(t for t in tags if t["name"] == name)
    return found


def _records(state: Path) -> list[dict[str, Any]]:
    """The change log as another process sees it (the server writes it concurrently: WAL)."""
    from finout_mcp.services.changelog import SqliteChangeStore

    if not (state / "changes.sqlite3").exists():
        return []
    store = SqliteChangeStore(state)
    try:
        return [r.model_dump(mode="json") for r in reversed(store.list(10_000))]
    finally:
        store.close()


def test_sigkill_mid_write_leaves_an_undoable_log(tmp_path: Path) -> None:
    sandbox = start_sandbox(tmp_path)
    state = tmp_path / "state"
    env = api_env(state, sandbox)
    first = second = None
    try:
        # Process 1: one completed write, then a write killed while its PUT is in flight.
        first = RawStdio(env, tmp_path / "server1.stderr")
        first.initialize()
        done = first.call_tool("update_virtual_tag", {"tag": "Team", "default_value": "shared-by-1"})
        assert not done.get("isError"), result_text(done)
        completed_id = done["structuredContent"]["change_id"]
        assert _tag(sandbox, "Team")["defaultValue"] == "shared-by-1"
        original_env_default = _tag(sandbox, "Environment")["defaultValue"]

        control = httpx.post(
            f"{sandbox.url}/_sandbox/faults",
            json={"script": {"PUT /v1/virtual-tags/{id}": [{"delay_s": 3}]}},
            timeout=10,
        )
        assert control.status_code == 200, control.text
        first.send(
            "tools/call",
            {
                "name": "update_virtual_tag",
                "arguments": {"tag": "Environment", "default_value": "shared-by-killed"},
            },
        )
        deadline = time.monotonic() + 20
        while not any(r["status"] == "pending" and r.get("target_name") == "Environment" for r in _records(state)):
            assert time.monotonic() < deadline, "the intent line was never written"
            time.sleep(0.02)
        time.sleep(0.3)  # the PUT is now waiting in the sandbox
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(timeout=5)
        pending = [r for r in _records(state) if r.get("target_name") == "Environment"]
        assert [r["status"] for r in pending] == ["pending"], pending  # no done line: killed mid-write
        pending_id = pending[0]["change_id"]

        # Process 2, same state dir: the log loads; the completed write is undone normally.
        second = RawStdio(env, tmp_path / "server2.stderr")
        second.initialize()
        undone = second.call_tool("undo_change", {"change_id": completed_id})
        assert not undone.get("isError"), result_text(undone)
        assert undone["structuredContent"]["status"] == "undone"
        assert _tag(sandbox, "Team")["defaultValue"] != "shared-by-1"

        # The interrupted write: a clear answer without force. Whether the PUT landed depends on
        # the server answering a request whose client vanished (uvicorn cancels it on disconnect).
        time.sleep(3.2 - 0.3)
        landed = _tag(sandbox, "Environment")["defaultValue"] == "shared-by-killed"
        refused = second.call_tool("undo_change", {"change_id": pending_id})
        message = result_text(refused)
        assert refused.get("isError") and "force=true" in message, message
        expected = "never confirmed" if landed else "never took effect"
        assert expected in message, message
        # ... and with force the before-image recorded in the intent line is restored.
        forced = second.call_tool("undo_change", {"change_id": pending_id, "force": True})
        assert not forced.get("isError"), result_text(forced)
        assert _tag(sandbox, "Environment")["defaultValue"] == original_env_default
        assert "Traceback" not in second.stderr()
    finally:
        for p in (first, second):
            if p is not None:
                p.stop()
        sandbox.stop()


def test_torn_last_line_of_a_legacy_log_is_skipped_on_import(tmp_path: Path) -> None:
    """A JSON-lines log of an earlier version, its writer killed mid-line: the complete records are
    imported (intent and done lines folded), the torn line is skipped, and nothing is imported twice."""
    from finout_mcp.services.changelog import SqliteChangeStore

    before = {"id": "t1", "name": "Team", "rules": [], "defaultValue": "a"}
    after = {**before, "defaultValue": "b"}
    lines = [
        {
            "change_id": "chg_1",
            "at": "2026-11-01T00:00:00Z",
            "operation": "update_virtual_tag",
            "target_type": "virtual_tag",
            "target_id": "t1",
            "target_name": "Team",
            "before": before,
            "status": "pending",
        },
        {
            "change_id": "chg_1",
            "at": "2026-11-01T00:00:00Z",
            "operation": "update_virtual_tag",
            "target_type": "virtual_tag",
            "target_id": "t1",
            "target_name": "Team",
            "after": after,
            "status": "done",
        },
    ]
    raw = "".join(json.dumps(x) + "\n" for x in lines) + '{"change_id": "chg_torn", "operation": "upd'
    (tmp_path / "changes.jsonl").write_text(raw)
    store = SqliteChangeStore(tmp_path)
    rec = store.get("chg_1")
    assert rec.status == "done" and rec.before == before and rec.after == after
    assert [r.change_id for r in store.list()] == ["chg_1"]
    store.close()
    again = SqliteChangeStore(tmp_path)
    assert [r.change_id for r in again.list()] == ["chg_1"]
    again.close()
