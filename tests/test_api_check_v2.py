"""The doctor's API v2 checks: all recognised on the sandbox, and each [spec] assumption reported when broken."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from finout_mcp.api.client import FinoutClient
from finout_mcp.api.client_v2 import FinoutV2Client
from finout_mcp.config import Settings
from finout_mcp.sandbox import Sandbox
from finout_mcp.services.api_check_v2 import ASSUMPTIONS, Check, check_api_v2
from finout_mcp.services.catalog import Catalog
from finout_mcp.services.cost_query import CostQueries
from tests.support import TODAY

Rewrite = Callable[[httpx.Request, httpx.Response], httpx.Response]


class Rewriting(httpx.AsyncBaseTransport):
    """The sandbox, with answers rewritten to play a live API that reads the docs differently."""

    def __init__(self, sb: Sandbox, rewrite: Rewrite | None = None) -> None:
        self.inner = httpx.ASGITransport(app=sb.app)
        self.rewrite = rewrite

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.rewrite is None:
            return response
        await response.aread()
        return self.rewrite(request, response)


async def run_checks(sb: Sandbox, rewrite: Rewrite | None = None) -> dict[str, Check]:
    settings = Settings(demo=True, api_url="http://sandbox/v1", v2_poll_first_s=0, v2_poll_interval_s=0)
    transport = Rewriting(sb, rewrite)
    async with (
        FinoutV2Client(settings, transport=transport) as v2,
        FinoutClient(settings, transport=transport) as v1,
    ):
        checks = await check_api_v2(v2, CostQueries(v2, Catalog(v1)), today=TODAY)
    assert sorted(c.name for c in checks) == sorted(ASSUMPTIONS)  # every assumption reported once
    return {c.name: c for c in checks}


async def test_every_v2_shape_is_recognised_on_the_sandbox() -> None:
    checks = await run_checks(Sandbox(seed=7, today=TODAY, compute_s=0))
    assert all(c.ok for c in checks.values()), [c for c in checks.values() if not c.ok]
    assert "/query-language" in checks["keys_path"].detail
    assert "1 queries used" in checks["rate_limits"].detail


async def test_the_megabill_path_is_found_and_reported() -> None:
    sb = Sandbox(seed=7, today=TODAY, compute_s=0)
    sb.v2.query_language_paths = {"megabill"}
    checks = await run_checks(sb)
    assert checks["keys_path"].ok and "/megabill/query-language" in checks["keys_path"].detail
    assert checks["rows"].ok


def _json(response: httpx.Response, data: object, status: int | None = None) -> httpx.Response:
    return httpx.Response(status or response.status_code, json=data, headers={"content-type": "application/json"})


async def test_spec_readings_that_do_not_hold_are_named() -> None:
    def rewrite(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        path = request.url.path
        if path.endswith("/generate-query") and b'"filters"' in request.content:
            return _json(
                response, {"requestId": "r", "error": "INVALID", "message": "value must be a string"}, 422
            )
        if path.endswith("/status"):
            body = response.json()
            body["data"].pop("expiredAt", None)
            return _json(response, body)
        if path.endswith("/results"):
            body = response.json()
            body["data"] = [
                {("cost" if k == "unblendedCost_sum" else k): v for k, v in r.items()} for r in body["data"]
            ]
            return _json(response, body)
        return response

    checks = await run_checks(Sandbox(seed=7, today=TODAY, compute_s=0), rewrite)
    assert checks["filter"].ok is False and "array" in checks["filter"].detail
    assert checks["generate"].ok and "without a filter" in checks["generate"].detail
    assert checks["status"].ok is False and "data.expiredAt" in checks["status"].detail
    assert checks["rows"].ok is False and "unblendedCost_sum" in checks["rows"].detail
    assert checks["keys"].ok and checks["results"].ok


async def test_unreadable_keys_stop_the_rest_without_spending_a_query() -> None:
    sb = Sandbox(seed=7, today=TODAY, compute_s=0)

    def rewrite(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if "query-language/keys" in request.url.path:
            return _json(response, json.loads(response.content)["data"])  # no data envelope: v1's shape
        return response

    checks = await run_checks(sb, rewrite)
    assert checks["keys"].ok is False and "data" in checks["keys"].detail
    assert checks["generate"].ok is None and not sb.v2.queries
