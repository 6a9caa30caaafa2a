"""The API v2 client against httpx.MockTransport replaying the documented shapes (finout-api-v2.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from finout_mcp.api.budget import GENERATE_QUERY, QUERY_STATUS, LocalRateBudget
from finout_mcp.api.client_v2 import FinoutV2Client
from finout_mcp.api.errors import (
    FinoutAPIStatusError,
    MalformedResponseError,
    RateLimitedError,
)
from finout_mcp.config import ConfigError, Settings

SECRET = "s3cr3t-v2-key-value"
KEYS_BODY = {
    "requestId": "r-1",
    "data": {
        "keys": [
            {"costCenter": "AWS", "key": "region", "displayName": "Regions", "types": ["billing_dimension"]},
            {
                "costCenter": "Kubernetes",
                "key": "namespace",
                "displayName": "Namespace",
                "types": ["k8s_namespace"],
            },
        ]
    },
}
BODY = {
    "date": {"unixTimeMillisecondsStart": 1719792000000, "unixTimeMillisecondsEnd": 1722470399999},
    "timeInterval": {"interval": "day"},
    "measurements": [{"type": "netAmortizedCost", "operator": "sum"}],
    "dimensions": [{"costCenter": "AWS", "key": "region", "type": "billing_dimension"}],
}


def settings(**kw: Any) -> Settings:
    base: dict[str, Any] = {
        "client_id": "cid",
        "secret_key": SECRET,
        "api_url": "https://finout.test/v1",
        "retry_budget_s": 60,
    }
    return Settings(**{**base, **kw})


class Recorder:
    """A MockTransport handler: routes by (method, path) to a list of answers, records requests."""

    def __init__(
        self, routes: dict[tuple[str, str], list[httpx.Response] | Callable[[httpx.Request], httpx.Response]]
    ):
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json={"requestId": "r-404", "error": "NOT_FOUND", "message": "no route"})
        if callable(answer):
            return answer(request)
        return answer.pop(0) if len(answer) > 1 else answer[0]

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def client(rec: Recorder, sleeps: list[float] | None = None, **kw: Any) -> FinoutV2Client:
    async def sleep(d: float) -> None:
        if sleeps is not None:
            sleeps.append(d)

    return FinoutV2Client(settings(**kw), transport=httpx.MockTransport(rec), sleep=sleep)


def ok(data: Any, **extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"requestId": "r", "data": data, **extra})


# ------------------------------------------------------------------ base URL


def test_v2_url_comes_from_the_v1_url_or_its_own_variable() -> None:
    assert settings().v2_url() == "https://finout.test/v2"
    assert settings(api_v2_url="https://other.test/v2/").v2_url() == "https://other.test/v2"
    with pytest.raises(ConfigError, match="FINOUT_API_V2_URL"):
        settings(api_url="https://proxy.test/finout").v2_url()


# ------------------------------------------------------------------ query language


async def test_keys_with_types_on_the_documented_path() -> None:
    rec = Recorder({("GET", "/v2/query-language/keys"): [ok(KEYS_BODY["data"])]})
    async with client(rec) as c:
        keys = await c.list_keys_v2()
    assert [(k.cost_center, k.key, k.types) for k in keys] == [
        ("AWS", "region", ["billing_dimension"]),
        ("Kubernetes", "namespace", ["k8s_namespace"]),
    ]
    assert rec.requests[0].headers["x-finout-secret-key"] == SECRET
    assert c.query_language_prefix == "/query-language"


async def test_keys_fall_back_to_megabill_on_404_and_remember_it() -> None:
    rec = Recorder(
        {
            ("GET", "/v2/megabill/query-language/keys"): [ok(KEYS_BODY["data"])],
            ("GET", "/v2/megabill/query-language/values/AWS/region"): [ok({"values": ["us-east-1"]})],
        }
    )
    async with client(rec) as c:
        assert len(await c.list_keys_v2()) == 2
        assert await c.list_values_v2("AWS", "region", "billing_dimension") == ["us-east-1"]
    assert rec.paths() == [
        "GET /v2/query-language/keys",
        "GET /v2/megabill/query-language/keys",
        "GET /v2/megabill/query-language/values/AWS/region",  # straight to the form that worked
    ]
    assert rec.requests[-1].url.params["type"] == "billing_dimension"
    assert c.query_language_prefix == "/megabill/query-language"


async def test_a_key_without_types_is_an_error_naming_the_field() -> None:
    bad = {"keys": [{"costCenter": "AWS", "key": "region", "displayName": "Regions"}]}
    rec = Recorder({("GET", "/v2/query-language/keys"): [ok(bad)]})
    async with client(rec) as c:
        with pytest.raises(MalformedResponseError) as err:
            await c.list_keys_v2()
    assert "data.keys.0.types" in str(err.value)


async def test_v1_shaped_keys_are_not_an_empty_success() -> None:
    v1 = httpx.Response(200, json={"keys": [{"costCenter": "AWS", "key": "region"}], "requestId": "r"})
    rec = Recorder({("GET", "/v2/query-language/keys"): [v1]})
    async with client(rec) as c:
        with pytest.raises(MalformedResponseError, match="data"):
            await c.list_keys_v2()


# ------------------------------------------------------------------ cost and usage


def lifecycle(pages: list[dict[str, Any]], statuses: list[str]) -> Recorder:
    status_answers = [
        ok(
            {"status": s}
            | (
                {"completedAt": "2026-11-25T10:00:05Z", "expiredAt": "2026-11-26T10:00:05Z", "totalRows": 3}
                if s == "completed"
                else {}
            )
        )
        for s in statuses
    ]
    page_answers = [httpx.Response(200, json={"requestId": "r", **p}) for p in pages]

    def results(request: httpx.Request) -> httpx.Response:
        return page_answers.pop(0)

    return Recorder(
        {
            ("POST", "/v2/data/cost-usage/generate-query"): [ok({"queryId": "q-1"})],
            ("GET", "/v2/data/cost-usage/q-1/status"): status_answers,
            ("GET", "/v2/data/cost-usage/q-1/results"): results,
        }
    )


ROW = {
    "day": "2024-07-01",
    "AWS_billing_dimension_region": "us-east-1",
    "netAmortizedCost_sum": {"amount": 123.45},
}


async def test_generate_poll_at_the_documented_cadence_then_page_through_results() -> None:
    pages = [
        {"pagination": {"hasMore": True, "totalRows": 3, "nextCursor": "c-2"}, "data": [ROW, ROW]},
        {"pagination": {"hasMore": False, "totalRows": 3}, "data": [ROW]},
    ]
    rec = lifecycle(pages, ["queued", "running", "running", "completed"])
    sleeps: list[float] = []
    async with client(rec, sleeps) as c:
        outcome = await c.run_query(BODY)
    assert outcome.query_id == "q-1" and len(outcome.rows) == 3 and outcome.polls == 4
    assert sleeps == [2.0, 5.0, 5.0, 5.0]  # a short first wait, then every 5 s as documented
    assert outcome.requests == 1 + 4 + 2
    sent = json.loads(rec.requests[0].content)
    assert sent == BODY
    second = rec.requests[-1]
    assert second.url.params["cursor"] == "c-2" and second.url.params["pageSize"] == "1000"
    assert outcome.expired_at == "2026-11-26T10:00:05Z"


async def test_a_failed_query_says_to_submit_it_again() -> None:
    rec = lifecycle([], ["running", "failed"])
    async with client(rec, []) as c:
        with pytest.raises(FinoutAPIStatusError) as err:
            await c.run_query(BODY)
    assert err.value.status == 424 and "submit" in str(err.value).lower()


async def test_expired_results_are_reported_with_what_to_do() -> None:
    gone = httpx.Response(
        410, json={"requestId": "r", "error": "RESULTS_EXPIRED", "message": "Results expired; submit a new query"}
    )
    rec = Recorder({("GET", "/v2/data/cost-usage/q-1/results"): [gone]})
    async with client(rec) as c:
        with pytest.raises(FinoutAPIStatusError) as err:
            await c.run_query(BODY, query_id="q-1")
    text = str(err.value)
    assert err.value.status == 410 and "expired" in text.lower()
    assert "submit the query again" in text.lower()


async def test_results_before_completion_are_not_taken_for_data() -> None:
    early = httpx.Response(202, json={"requestId": "r", "error": "QUERY_RUNNING", "message": "running"})
    rec = Recorder({("GET", "/v2/data/cost-usage/q-1/results"): [early]})
    async with client(rec) as c:
        with pytest.raises(MalformedResponseError, match="before the query completed"):
            await c.query_results("q-1")


async def test_a_results_page_without_pagination_names_the_field() -> None:
    rec = lifecycle([{"data": [ROW]}], ["completed"])
    async with client(rec, []) as c:
        with pytest.raises(MalformedResponseError) as err:
            await c.run_query(BODY)
    assert "pagination" in str(err.value)


async def test_a_cursor_that_never_ends_is_an_error() -> None:
    loop = {"pagination": {"hasMore": True, "totalRows": 9, "nextCursor": "same"}, "data": [ROW]}
    rec = lifecycle([loop, loop, loop], ["completed"])
    async with client(rec, []) as c:
        with pytest.raises(MalformedResponseError, match="nextCursor"):
            await c.run_query(BODY)


async def test_status_outside_the_documented_enum_is_an_error() -> None:
    rec = lifecycle([], ["thinking"])
    async with client(rec, []) as c:
        with pytest.raises(MalformedResponseError, match=r"data\.status"):
            await c.run_query(BODY)


async def test_429_backs_off_with_jitter_and_pauses_the_route_for_everyone() -> None:
    limited = httpx.Response(429, json={"requestId": "r", "error": "RATE_LIMITED", "message": "slow down"})
    rec = lifecycle([{"pagination": {"hasMore": False, "totalRows": 1}, "data": [ROW]}], ["completed"])
    completed = rec.routes[("GET", "/v2/data/cost-usage/q-1/status")]
    assert isinstance(completed, list)
    rec.routes[("GET", "/v2/data/cost-usage/q-1/status")] = [limited, *completed]
    sleeps: list[float] = []
    clock = [1000.0]
    budget = LocalRateBudget(clock=lambda: clock[0], sleep=_advance(clock, sleeps))
    async with FinoutV2Client(
        settings(), transport=httpx.MockTransport(rec), sleep=_advance(clock, sleeps), budget=budget
    ) as c:
        outcome = await c.run_query(BODY)
    assert len(outcome.rows) == 1
    assert c.stats.retries == 1
    # first wait 2 s; after the 429 a jittered backoff, and the route stays paused 5 s in all
    assert sleeps[0] == 2.0 and 0 < sleeps[1] <= 0.5
    assert sum(sleeps[1:]) == pytest.approx(5.0)
    status_times = [t for t, route in budget.sent_log if route == QUERY_STATUS]
    assert status_times[1] - status_times[0] == pytest.approx(5.0)


def _advance(clock: list[float], sleeps: list[float]) -> Callable[[float], Any]:
    async def sleep(d: float) -> None:
        sleeps.append(d)
        clock[0] += d

    return sleep


async def test_no_secret_in_any_error() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"requestId": "r", "error": "BAD", "message": f"bad key {SECRET}"})

    rec = Recorder({("POST", "/v2/data/cost-usage/generate-query"): echo})
    async with client(rec) as c:
        with pytest.raises(FinoutAPIStatusError) as err:
            await c.generate_query(BODY)
    assert SECRET not in str(err.value) and SECRET not in repr(err.value)
    assert "60 days" in str(err.value)  # the v2 hint, not v1's 90 days


# ------------------------------------------------------------------ the budget


async def test_the_budget_never_sends_faster_than_the_documented_limit() -> None:
    clock = [0.0]
    sleeps: list[float] = []
    budget = LocalRateBudget(clock=lambda: clock[0], sleep=_advance(clock, sleeps))
    for _ in range(120):
        await budget.acquire(QUERY_STATUS)
        clock[0] += 0.1
    times = [t for t, route in budget.sent_log if route == QUERY_STATUS]
    worst = max(sum(1 for u in times if t <= u < t + 60.0) for t in times)
    assert worst <= 50
    assert budget.usage().daily_used == 0  # status polls are not queries


async def test_the_daily_cap_refuses_with_a_clear_error() -> None:
    clock = [0.0]
    budget = LocalRateBudget(per_day={GENERATE_QUERY: 3}, clock=lambda: clock[0], sleep=_advance(clock, []))
    for _ in range(3):
        await budget.acquire(GENERATE_QUERY)
        clock[0] += 2
    with pytest.raises(RateLimitedError) as err:
        await budget.acquire(GENERATE_QUERY)
    assert not err.value.retryable and "00:00 UTC" in str(err.value)
    assert budget.usage().daily_used == 3 and "3 of 3" in budget.usage().sentence()
    clock[0] += 86_400  # the next UTC day
    await budget.acquire(GENERATE_QUERY)
    assert budget.usage().daily_used == 1


async def test_the_days_query_count_survives_a_restart(tmp_path: Path) -> None:
    from finout_mcp.services.changelog import open_change_store

    clock = [1_000.0]
    store = open_change_store(tmp_path)
    budget = LocalRateBudget(
        per_day={GENERATE_QUERY: 3}, clock=lambda: clock[0], sleep=_advance(clock, []), daily=store
    )
    await budget.acquire(GENERATE_QUERY)
    await budget.acquire(GENERATE_QUERY)
    store.close()
    # a new process on the same state dir: still 2 of 3, and the cap holds
    again = open_change_store(tmp_path)
    restarted = LocalRateBudget(
        per_day={GENERATE_QUERY: 3}, clock=lambda: clock[0], sleep=_advance(clock, []), daily=again
    )
    assert restarted.usage().daily_used == 2 and "2 of 3" in restarted.usage().sentence()
    await restarted.acquire(GENERATE_QUERY)
    with pytest.raises(RateLimitedError):
        await restarted.acquire(GENERATE_QUERY)
    clock[0] += 86_400
    assert restarted.usage().daily_used == 0
    again.close()
