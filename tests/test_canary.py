"""Secrets canary: a canary secret key and canary Slack webhooks must appear nowhere.

The server runs as a subprocess over stdio (``--log-level DEBUG``) against a sandbox served
on a loopback port by this test (so the test can also make it misbehave: 401s, broken bodies,
dropped connections, and error bodies that *echo the secret key back* in ``message`` and
``requestId``). Every tool is driven, successes and errors; then stdout (every JSON-RPC
answer: texts and structured content), stderr and every file in the state dir (the change
log) are scanned for the canaries.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from finout_mcp.sandbox.faults import Fault
from tests.conftest import server_env
from tests.test_durability import RawStdio, result_text
from tests.test_faults import TOOL_ARGS, Rig, ThreadedUvicorn

pytestmark = pytest.mark.slow

SECRET = "sk-CANARY-9f8e7d6c5b4a"
WEBHOOK = "https://hooks.slack.com/services/TCANARY/BCANARY/canary123secret"
SEEDED_WEBHOOK = "https://hooks.slack.com/services/TSEEDED/BSEEDED/seededcanary456"
CANARIES = [
    SECRET,
    WEBHOOK,
    SEEDED_WEBHOOK,
    "canary123secret",
    "seededcanary456",
    "TCANARY/BCANARY",
    "TSEEDED/BSEEDED",
]


class EchoRig(Rig):
    """The sandbox, plus a switch that answers with the caller's secret key echoed back."""

    def __init__(self) -> None:
        super().__init__()
        self.echo: list[int] = []  # statuses of the next echoing answers

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.echo and not scope["path"].startswith("/_sandbox"):
            status = self.echo.pop(0)
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            key = headers.get("x-finout-secret-key", "")
            body = {"message": f"invalid key {key}", "error": key, "requestId": key}
            response = JSONResponse(body, status_code=status, headers={"x-request-id": key})
            await response(scope, receive, send)
            return
        await super().app(scope, receive, send)


def test_canaries_never_leak(tmp_path: Path) -> None:
    rig = EchoRig()
    sb = rig.sandbox
    sb.account.endpoints.append(
        {
            "id": "ep-canary",
            "type": "slack",
            "name": "#canary",
            "configuration": {"to": SEEDED_WEBHOOK},
            "createdBy": "x",
            "createdAt": "Mon Mar 04 2024 09:30:12 GMT+0000 (Coordinated Universal Time)",
        }
    )
    state = tmp_path / "state"
    results: list[dict[str, Any]] = []
    with ThreadedUvicorn(rig.app) as http:
        env = server_env(
            state,
            FINOUT_API_URL=http.url,
            FINOUT_CLIENT_ID="canary-client",
            FINOUT_SECRET_KEY=SECRET,
            FINOUT_MCP_RETRY_MAX_ATTEMPTS="2",
            FINOUT_MCP_RETRY_BUDGET="1",
        )
        server = RawStdio(env, tmp_path / "server.stderr", "--log-level", "DEBUG")
        try:
            server.initialize()
            results.append(server.request("tools/list"))

            def run(name: str, args: dict[str, Any]) -> dict[str, Any]:
                result = server.call_tool(name, args)
                results.append(result)
                return result

            # every tool, successfully
            for name, args in TOOL_ARGS.items():
                if name == "undo_change":
                    continue
                result = run(name, args)
                assert not result.get("isError"), f"{name}: {result_text(result)}"
            upd = run("update_virtual_tag", {"tag": "Team", "default_value": "canary-default"})
            run("undo_change", {"change_id": upd["structuredContent"]["change_id"]})
            # the canary webhook: dry run, create, list, idempotent re-create, mismatched re-create
            for args in ({"dry_run": True}, {}, {}, {"to": WEBHOOK + "x"}):
                run("create_endpoint", {"type": "slack", "name": "Canary alerts", "to": WEBHOOK, **args})
            listed = run("list_endpoints", {"type": "slack"})
            ids = [e["id"] for e in listed["structuredContent"]["endpoints"]]
            run("update_virtual_tag_metadata", {"tag": "Team", "values": {"checkout": {"endpoints": ids}}})
            run("get_virtual_tag_metadata", {"tag": "Team"})
            # invalid webhooks that contain the canary
            for bad in (
                WEBHOOK.replace("https", "http"),
                WEBHOOK + "\nX-Injected: 1",
                WEBHOOK + "#frag",
                f"{WEBHOOK} {SECRET}",
            ):
                assert run("create_endpoint", {"type": "slack", "name": "Bad", "to": bad}).get("isError")
            # errors: 401, broken bodies, dropped connections, and the key echoed back
            faults = [
                Fault(401),
                Fault(403),
                Fault(body="html"),
                Fault(body="truncated"),
                Fault(drop=True),
                Fault(500),
                Fault(body="empty"),
            ]
            for fault in faults:
                for name in ("list_endpoints", "list_virtual_tags", "get_virtual_tag_metadata"):
                    rig.sandbox.faults.script("*", [fault])
                    run(
                        name,
                        {"refresh": True}
                        if name == "list_virtual_tags"
                        else {"tag": "Team"}
                        if name == "get_virtual_tag_metadata"
                        else {},
                    )
                    rig.sandbox.faults.clear()
            for status in (401, 400, 422, 500, 503, 200):
                for name, args in TOOL_ARGS.items():
                    if name in ("undo_change", "compose_filter"):
                        continue
                    rig.echo[:] = [status] * 3
                    run(name, args)
                    rig.echo.clear()
            run("undo_change", {"change_id": f"chg_{SECRET}"})
        finally:
            server.stop()

    haystacks: dict[str, str] = {
        "stdout": "".join(server.stdout_lines),
        "stderr": server.stderr(),
        "results": json.dumps(results, ensure_ascii=False),
    }
    for path in state.rglob("*"):
        if path.is_file():
            haystacks[f"state:{path.name}"] = path.read_text(errors="replace")
    hits = [(where, c) for where, hay in haystacks.items() for c in CANARIES if c in hay]
    assert hits == [], hits
    # the scan saw real traffic: results, errors, DEBUG logs and the change log
    assert len(results) > 100 and any(r.get("isError") for r in results)
    assert "DEBUG" in haystacks["stderr"] and any(k.startswith("state:changes.sqlite3") for k in haystacks)
    assert "hooks.slack.com/…" in haystacks["results"]  # the webhooks were there, masked
