"""Fault matrix: every tool × every way the Finout API can misbehave.

Each case runs one tool with valid arguments (that succeed on a healthy sandbox) while the
sandbox's fault switchboard makes one request misbehave, then checks that the call ended
either in a successful retry or in a tool error that names the status, says what to do and
carries Finout's ``requestId`` when there is one; and that the server answers the next call.

How the faults are produced:
- statuses and broken bodies: ``Fault(status, retry_after, body)`` on the sandbox switchboard;
- a dropped connection: ``Fault(drop=True)`` (the sandbox starts the body, then breaks);
- a connect error: an ASGI shim in front of the sandbox raises ``httpx.ConnectError`` for the
  matching request (httpx.ASGITransport re-raises app exceptions, exactly what a refused TCP
  connection looks like to the client); ``test_connection_refused_*`` also points a server
  at a closed port;
- a read timeout: ``httpx.ASGITransport`` does not enforce timeouts, so these cases run
  against the same sandbox served by uvicorn on a real loopback port (a background thread),
  with ``read_timeout=2.0`` s and a scripted ``Fault(delay_s=2.6)``: a real ``ReadTimeout``.
  (2 s, not less: forecast_costs sends five 90-day queries at once, which a loaded sandbox answers
  one after another, ~0.15 s each on an idle machine).

Runtime: one MCP server is built per module (building costs ~0.5 s) and reused; every case
gets a fresh sandbox and a fresh client session (so no cache hides a fault), and the client's
backoff base is patched to ~0 so retries do not sleep.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import uvicorn
from mcp import Client
from mcp.server import MCPServer
from starlette.types import Receive, Scope, Send

from finout_mcp.config import Settings
from finout_mcp.sandbox import Sandbox
from finout_mcp.sandbox.faults import Fault
from finout_mcp.server.app import build_server
from tests.support import TODAY, call, text

CHECKOUT_RULE: dict[str, Any] = {
    "to": "Checkout",
    "filter": {
        "any": [
            {"key": "Account Name", "op": "in", "values": ["prod-eu", "prod-us"]},
            {"key": "namespace", "cost_center": "Kubernetes", "op": "=", "value": "checkout"},
        ]
    },
}

# Valid arguments for every tool (each succeeds on a fresh demo sandbox).
TOOL_ARGS: dict[str, dict[str, Any]] = {
    "list_views": {},
    "query_view_costs": {"view": "All costs by service", "period": "last_30_days"},
    "list_megabill_keys": {"search": "account"},
    "list_key_values": {"key": "pl_app"},
    "compose_filter": {"intent": CHECKOUT_RULE["filter"]},
    "list_virtual_tags": {},
    "get_virtual_tag": {"tag": "Team"},
    "lint_virtual_tag": {"tag": "Team"},
    "create_virtual_tag": {"name": "Product", "rules": [CHECKOUT_RULE], "default_value": "unallocated"},
    "update_virtual_tag": {"tag": "Environment", "default_value": "shared"},
    "clone_virtual_tag": {"tag": "Team", "new_name": "Team copy"},
    "delete_virtual_tag": {"tag": "Environment", "confirm_name": "Environment"},
    "get_virtual_tag_metadata": {"tag": "Team"},
    "update_virtual_tag_metadata": {"tag": "Team", "values": {"checkout": {"customMetadata": {"owner": "li"}}}},
    "list_costguard_scans": {},
    "get_scan_recommendations": {"scan": "EC2 - Idle", "group_by": "Account Name"},
    "summarize_savings": {"group_by": "account"},
    "find_cost_anomalies": {"view": "All costs by service"},
    "forecast_costs": {"view": "All costs by service"},
    "list_endpoints": {},
    "create_endpoint": {"type": "email", "name": "Reliability", "to": "sre@example.com"},
    "undo_change": {},  # change_id filled in by a setup write (see _setup)
}

KEYS = "GET /v1/megabill/query-language/keys"
VALUES = "GET /v1/megabill/query-language/values/{costCenter}/{key}"
TAGS = "GET /v1/virtual-tags"
TAG = "GET /v1/virtual-tags/{id}"
META = "GET /v1/virtual-tags/{id}/metadata"

# tool -> (the route it wraps or writes: the full fault set, [reads before it: a reduced set])
TARGETS: dict[str, tuple[str, list[str]]] = {
    "list_views": ("GET /v1/view", []),
    "query_view_costs": ("POST /v1/cost/query-by-view", ["GET /v1/view"]),
    "list_megabill_keys": (KEYS, []),
    "list_key_values": (VALUES, [KEYS]),
    "compose_filter": (KEYS, [TAGS, VALUES]),
    "list_virtual_tags": (TAGS, []),
    "get_virtual_tag": (TAG, [TAGS, KEYS]),
    "lint_virtual_tag": (TAG, [TAGS, KEYS, VALUES]),
    "create_virtual_tag": ("POST /v1/virtual-tags", [KEYS, TAGS, VALUES]),
    "update_virtual_tag": ("PUT /v1/virtual-tags/{id}", [TAGS, TAG]),
    "clone_virtual_tag": ("POST /v1/virtual-tags", [TAGS, TAG]),
    "delete_virtual_tag": ("DELETE /v1/virtual-tags/{id}", [TAGS, TAG, META]),
    "get_virtual_tag_metadata": (META, [TAGS]),
    "update_virtual_tag_metadata": ("PUT /v1/virtual-tags/{id}/metadata", [TAGS, META]),
    "list_costguard_scans": ("GET /v1/cost-guard/scans", []),
    "get_scan_recommendations": ("POST /v1/cost-guard/scans-recommendations", ["GET /v1/cost-guard/scans", KEYS]),
    "summarize_savings": ("POST /v1/cost-guard/scans-recommendations", ["GET /v1/cost-guard/scans"]),
    "find_cost_anomalies": ("POST /v1/cost/query-by-view", ["GET /v1/view"]),
    "forecast_costs": ("POST /v1/cost/query-by-view", ["GET /v1/view"]),
    "list_endpoints": ("GET /v1/endpoints", []),
    "create_endpoint": ("POST /v1/endpoints", ["GET /v1/endpoints"]),
    "undo_change": ("PUT /v1/virtual-tags/{id}", [TAG]),
}
CREATES = {"POST /v1/virtual-tags", "POST /v1/endpoints"}  # never blindly re-sent
# Tools that fan out over many requests: one failed request gives a partial answer that names it.
FAN_OUT = {"summarize_savings"}
# Tools that fetch several 90-day windows at once (forecast_costs: 450 days): several scripted faults
# may land one on each window, and each is then retried away like a single fault.
MULTI_WINDOW = {"forecast_costs"}


@dataclass(frozen=True)
class Case:
    """One misbehaviour. ``kind``: switchboard fault, shim connect error, or real read timeout."""

    name: str
    faults: tuple[Fault, ...] = ()
    kind: str = "switchboard"  # switchboard | connect | timeout
    status: int | None = None  # the status the error must name
    request_id: bool = False  # the error must carry Finout's requestId
    retried_if_idempotent: bool = False  # one occurrence is retried away on GET/PUT/DELETE/queries
    retried_if_create: bool = False  # ... and on a create (provably not processed)


CASES = [
    Case(
        "429-retry-after",
        (Fault(429, retry_after=0.01),),
        status=429,
        request_id=True,
        retried_if_idempotent=True,
        retried_if_create=True,
    ),
    Case("429", (Fault(429),), status=429, request_id=True, retried_if_idempotent=True, retried_if_create=True),
    Case("500", (Fault(500),), status=500, request_id=True),
    Case("502", (Fault(502),), status=502, request_id=True, retried_if_idempotent=True),
    Case("502-html", (Fault(502, body="html"),), status=502, retried_if_idempotent=True),
    Case("503", (Fault(503),), status=503, request_id=True, retried_if_idempotent=True),
    Case("503-persistent", tuple(Fault(503) for _ in range(4)), status=503, request_id=True),
    Case("504", (Fault(504),), status=504, request_id=True, retried_if_idempotent=True),
    Case("read-timeout", (Fault(delay_s=2.6),), kind="timeout", retried_if_idempotent=True),
    Case("connect-error", kind="connect", retried_if_idempotent=True, retried_if_create=True),
    Case("dropped", (Fault(drop=True),), retried_if_idempotent=True),
    Case("html-body", (Fault(body="html"),), status=200),
    Case("empty-body", (Fault(body="empty"),), status=200),
    Case("truncated-body", (Fault(body="truncated"),), status=200),
    Case("401", (Fault(401),), status=401, request_id=True),
    Case("403", (Fault(403),), status=403, request_id=True),
]
READ_CASES = {"429", "500", "503", "dropped", "truncated-body", "401", "read-timeout"}

ACTIONABLE = re.compile(r"retry|check|fix|ask|wait|list_", re.IGNORECASE)
REQUEST_ID = re.compile(r"requestId req-[0-9a-f]{6}")


def matrix() -> list[Any]:
    params = []
    for tool, (primary, reads) in TARGETS.items():
        for case in CASES:
            params.append(pytest.param(tool, primary, case, id=f"{tool}-{primary.split()[0]}-{case.name}"))
        for route in reads:
            for case in CASES:
                if case.name in READ_CASES:
                    short = route.split("/v1/")[1].replace("/", ".").replace("{", "").replace("}", "")
                    params.append(pytest.param(tool, route, case, id=f"{tool}-read-{short}-{case.name}"))
    return params


# ----------------------------------------------------------------------------- the rig


class Rig:
    """An ASGI front for the *current* sandbox (swapped per case), with a connect-error shim.

    Passed to ``build_server(sandbox=...)``: the demo lifespan only reads ``.app``. The same
    front is served by uvicorn on a loopback port for the real-timeout server.
    """

    def __init__(self) -> None:
        self.sandbox = Sandbox(seed=7, today=TODAY)
        self.connect_errors: dict[str, int] = {}

    def fresh(self) -> Sandbox:
        self.sandbox = Sandbox(seed=7, today=TODAY)
        self.connect_errors.clear()
        return self.sandbox

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        sb = self.sandbox
        if scope["type"] == "http":
            raw = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
            route, _handler, _params = sb._match(scope["method"].upper(), raw)
            key = f"{scope['method'].upper()} {route}"
            if self.connect_errors.get(key, 0) > 0:
                self.connect_errors[key] -= 1
                raise httpx.ConnectError("injected: connection refused")
        await sb.app(scope, receive, send)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ThreadedUvicorn:
    """An ASGI app served on 127.0.0.1 by uvicorn in a daemon thread."""

    app: Any
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            interface="asgi3",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> ThreadedUvicorn:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@dataclass
class Servers:
    rig: Rig
    demo: MCPServer[Any]
    real: MCPServer[Any]  # non-demo, over a real port with a short read timeout


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    rig = Rig()
    state = tmp_path_factory.mktemp("fault-state")
    demo_server = build_server(
        Settings(demo=True, state_dir=state), sandbox=cast(Sandbox, rig), today=lambda: TODAY
    )
    with ThreadedUvicorn(rig.app) as http:
        real_settings = Settings(
            client_id="demo-client",
            secret_key="demo-secret",
            api_url=http.url,
            state_dir=state,
            read_timeout=2.0,
            connect_timeout=1.0,
        )
        real_server = build_server(real_settings, today=lambda: TODAY)
        yield Servers(rig, demo_server, real_server)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without sleeping (jittered backoff base ~0); Retry-After is still honoured."""
    monkeypatch.setattr("finout_mcp.api.client.BACKOFF_BASE_S", 0.001)


async def _setup(client: Client, tool: str) -> dict[str, Any]:
    args = dict(TOOL_ARGS[tool])
    if tool == "undo_change":
        done = await call(client, "update_virtual_tag", {"tag": "Environment", "default_value": "shared"})
        args["change_id"] = done["change_id"]
    return args


def _arm(rig: Rig, sb: Sandbox, route: str, case: Case) -> None:
    if case.kind == "connect":
        rig.connect_errors[route] = 1
    else:
        sb.faults.script(route, list(case.faults))


def _pending(rig: Rig, sb: Sandbox) -> int:
    return sb.faults.pending() + sum(rig.connect_errors.values())


async def run_case(servers: Servers, tool: str, route: str, case: Case, *, primary: bool) -> str:
    """Run one case; returns 'retried' or 'error' (after checking the error's quality)."""
    rig = servers.rig
    sb = rig.fresh()
    server = servers.real if case.kind == "timeout" else servers.demo
    async with Client(server) as client:
        args = await _setup(client, tool)
        sb.request_log.clear()
        _arm(rig, sb, route, case)
        started = time.monotonic()
        result = await client.call_tool(tool, args)
        elapsed = time.monotonic() - started
        expect_retry = case.retried_if_create if route in CREATES else case.retried_if_idempotent
        consumed = max(len(case.faults), 1) - _pending(rig, sb)
        assert consumed >= 1, f"the fault on {route} was never hit: {sb.request_log}"
        if expect_retry:
            assert _pending(rig, sb) == 0
        assert elapsed < 10, f"{tool} took {elapsed:.1f} s under {case.name}"
        message = text(result)
        assert "Traceback" not in message and "demo-secret" not in message
        outcome = "error" if result.is_error else "retried"
        if result.is_error:
            assert message.strip() and message.strip() != f"Error executing tool {tool}", message
            assert "Internal error" not in message, message
            if case.status is not None:
                assert str(case.status) in message, f"status {case.status} not named: {message}"
            elif case.kind == "timeout":
                assert "ReadTimeout" in message or "no answer within" in message, message
            if case.request_id:
                assert REQUEST_ID.search(message), f"requestId missing: {message}"
            assert ACTIONABLE.search(message), f"no advice in: {message}"
            if route in CREATES and case.kind != "connect" and case.status not in (401, 403, 429, 500):
                # the outcome of a create is unknown: the advice is to look before re-sending
                assert "list_virtual_tags" in message or "list_endpoints" in message, message
        else:
            assert result.structured_content is not None
            failed = [s for s in result.structured_content.get("scans", []) if s.get("error")]
            if tool in FAN_OUT and failed:
                outcome = "partial"
                assert result.structured_content["incomplete"] is True and len(failed) == 1
                error = failed[0]["error"]
                if case.status is not None:
                    assert str(case.status) in error, f"status {case.status} not named: {error}"
                if case.request_id:
                    assert REQUEST_ID.search(error), f"requestId missing: {error}"
                assert ACTIONABLE.search(error), f"no advice in: {error}"
        # The server is healthy afterwards and answers the next call.
        sb.faults.clear()
        rig.connect_errors.clear()
        after = await client.call_tool("list_views", {"refresh": True})
        assert not after.is_error, text(after)
    if expect_retry:
        assert outcome == "retried", f"{tool}: one {case.name} on {route} should be retried away: {message}"
    elif primary and not (route.startswith("DELETE") and case.status == 200):
        # (a DELETE answered 200 is done whatever its body: the client does not read it)
        expected = {"partial"} if tool in FAN_OUT else {"error"}
        if tool in FAN_OUT | MULTI_WINDOW and len(case.faults) > 1:
            expected.add("retried")  # several faults spread over the fanned-out requests: each retried away
        assert outcome in expected, f"{tool}: {case.name} on {route} must be reported, got {message[:300]}"
    return outcome


@pytest.mark.parametrize(("tool", "route", "case"), matrix())
async def test_fault_matrix(servers: Servers, tool: str, route: str, case: Case) -> None:
    await run_case(servers, tool, route, case, primary=route == TARGETS[tool][0])


def test_matrix_covers_every_tool() -> None:
    assert set(TARGETS) == set(TOOL_ARGS) and len(TOOL_ARGS) == 22
    # 22 tools × 16 faults on the route each wraps or writes, plus 7 faults × each read before it
    assert len(matrix()) == 22 * len(CASES) + len(READ_CASES) * sum(len(r) for _, r in TARGETS.values())


async def test_connection_refused_for_every_tool(tmp_path: Path) -> None:
    """A server pointed at a closed port: every tool answers with a clear, actionable error, quickly."""
    settings = Settings(
        client_id="demo-client",
        secret_key="demo-secret",
        api_url=f"http://127.0.0.1:{free_port()}/v1",
        state_dir=tmp_path,
        retry_max_attempts=2,
        connect_timeout=1.0,
    )
    server = build_server(settings, today=lambda: TODAY)
    async with Client(server) as client:
        for tool, args in TOOL_ARGS.items():
            if tool == "undo_change":
                args = {"change_id": "chg_20261125T120000Z_abcdef"}
            result = await client.call_tool(tool, args)
            message = text(result)
            assert result.is_error, f"{tool}: {message}"
            assert "Traceback" not in message and "demo-secret" not in message
            if tool != "undo_change":  # nothing to undo: answered from the local log, no network
                assert "connection failed" in message and "ConnectError" in message, message
                assert "check the network and FINOUT_API_URL" in message, message
