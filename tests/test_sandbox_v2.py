"""The sandbox's API v2, strict to finout-api-v2.md, and its agreement with the v1 views."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from finout_mcp.sandbox import Fault, Sandbox
from finout_mcp.sandbox.costs import DAY_MS, day_ms
from tests.support import TODAY

GEN = "/v2/data/cost-usage/generate-query"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sb(clock: Clock) -> Sandbox:
    return Sandbox(seed=7, today=TODAY, compute_s=4, clock=clock)


@pytest.fixture
async def api(sb: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sb.app),
        base_url="http://sandbox",
        headers={"x-finout-client-id": "demo-client", "x-finout-secret-key": "demo-secret"},
    ) as client:
        yield client


def window(first: dt.date, last: dt.date) -> dict[str, int]:
    return {"unixTimeMillisecondsStart": day_ms(first), "unixTimeMillisecondsEnd": day_ms(last) + DAY_MS - 1}


def body(first: dt.date, last: dt.date, **extra: Any) -> dict[str, Any]:
    return {
        "date": window(first, last),
        "timeInterval": {"interval": "day"},
        "measurements": [{"type": "unblendedCost", "operator": "sum"}],
        **extra,
    }


async def run(api: httpx.AsyncClient, clock: Clock, payload: dict[str, Any], page: int = 10_000) -> list[Any]:
    r = await api.post(GEN, json=payload)
    assert r.status_code == 200, r.text
    qid = r.json()["data"]["queryId"]
    clock.now += 5
    status = (await api.get(f"/v2/data/cost-usage/{qid}/status")).json()["data"]
    assert status["status"] == "completed"
    rows: list[Any] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"pageSize": page}
        if cursor:
            params["cursor"] = cursor
        clock.now += 1.5  # stay within 50 requests a minute on the results route
        got = (await api.get(f"/v2/data/cost-usage/{qid}/results", params=params)).json()
        rows += got["data"]
        if not got["pagination"]["hasMore"]:
            assert "nextCursor" not in got["pagination"]
            return rows
        cursor = got["pagination"]["nextCursor"]


LAST_MONTH = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))


async def test_keys_carry_types_on_both_documented_paths(api: httpx.AsyncClient, sb: Sandbox) -> None:
    plain = (await api.get("/v2/query-language/keys")).json()
    megabill = (await api.get("/v2/megabill/query-language/keys")).json()
    assert plain["data"] == megabill["data"] and set(plain) == {"requestId", "data"}
    keys = {(k["costCenter"], k["key"]): k["types"] for k in plain["data"]["keys"]}
    assert keys[("Kubernetes", "namespace")] == ["k8s_namespace", "kubernetes_resource"]
    assert keys[("AWS", "team")] == ["tag"]
    assert all(t == ["virtual_tag"] for (cc, _), t in keys.items() if cc == "Virtual Tags")
    sb.v2.query_language_paths = {"megabill"}
    assert (await api.get("/v2/query-language/keys")).status_code == 404


async def test_values_need_the_type_of_a_multi_type_key(api: httpx.AsyncClient) -> None:
    r = await api.get("/v2/query-language/values/Kubernetes/namespace")
    assert r.status_code == 400 and r.json()["error"] == "TYPE_REQUIRED"
    r = await api.get("/v2/query-language/values/Kubernetes/namespace", params={"type": "k8s_namespace"})
    assert "checkout" in r.json()["data"]["values"]


async def test_sixty_days_at_most(api: httpx.AsyncClient) -> None:
    last = TODAY - dt.timedelta(days=1)
    ok = await api.post(GEN, json=body(last - dt.timedelta(days=59), last))
    assert ok.status_code == 200
    long = await api.post(GEN, json=body(last - dt.timedelta(days=60), last))
    assert long.status_code == 400 and "60 days" in long.json()["message"]
    assert set(long.json()) == {"requestId", "error", "message"}


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"filters": {"costCenter": "AWS", "key": "service", "operator": "is", "value": "x"}}, 422, "type"),
        (
            {"filters": {"costCenter": "AWS", "key": "service", "type": "tag", "operator": "is", "value": "x"}},
            422,
            "billing_dimension",
        ),
        (
            {
                "filters": {
                    "costCenter": "AWS",
                    "key": "service",
                    "type": "billing_dimension",
                    "operator": "isNot",
                    "value": "x",
                }
            },
            422,
            "notIs",
        ),
        ({"dimensions": [{"costCenter": "AWS", "key": "service"}]}, 400, "type"),
        ({"rowLimit": 100_001}, 400, "rowLimit"),
        ({"viewId": "x"}, 400, "viewId"),
    ],
)
async def test_invalid_queries_are_refused_naming_the_problem(
    api: httpx.AsyncClient, change: dict[str, Any], status: int, words: str
) -> None:
    r = await api.post(GEN, json=body(*LAST_MONTH, **change))
    assert r.status_code == status and words in r.json()["message"]


async def test_thirty_conditions_and_three_virtual_tags_at_most(api: httpx.AsyncClient, sb: Sandbox) -> None:
    cond = {"costCenter": "AWS", "key": "service", "type": "billing_dimension", "operator": "is", "value": ["x"]}
    r = await api.post(GEN, json=body(*LAST_MONTH, filters={"OR": [cond] * 31}))
    assert r.status_code == 422 and "30" in r.json()["message"]
    tags = list(sb.account.virtual_tags)
    for i in range(2):
        sb.account.new_tag(f"extra-{i}", [], "x", "test", dt.datetime(2026, 1, 1))
    tags = list(sb.account.virtual_tags)
    dims = [{"costCenter": "Virtual Tags", "key": t, "type": "virtual_tag"} for t in tags[:4]]
    r = await api.post(GEN, json=body(*LAST_MONTH, dimensions=dims))
    assert r.status_code == 422 and "3" in r.json()["message"]


async def test_lifecycle_queued_running_completed_expired(
    api: httpx.AsyncClient, clock: Clock, sb: Sandbox
) -> None:
    qid = (await api.post(GEN, json=body(*LAST_MONTH))).json()["data"]["queryId"]
    status = f"/v2/data/cost-usage/{qid}/status"
    results = f"/v2/data/cost-usage/{qid}/results"
    assert (await api.get(status)).json()["data"] == {"status": "queued"}
    early = await api.get(results)
    assert early.status_code == 202 and early.json()["error"] == "QUERY_QUEUED"
    clock.now += 2
    assert (await api.get(status)).json()["data"]["status"] == "running"
    assert (await api.get(results)).json()["error"] == "QUERY_RUNNING"
    clock.now += 3
    done = (await api.get(status)).json()["data"]
    assert done["status"] == "completed" and done["totalRows"] == 31
    assert done["expiredAt"] > done["completedAt"]
    clock.now += 24 * 3600
    assert (await api.get(status)).json()["data"]["status"] == "expired"
    gone = await api.get(results)
    assert gone.status_code == 410 and gone.json()["error"] == "RESULTS_EXPIRED"
    assert (await api.get("/v2/data/cost-usage/nope/status")).status_code == 404


async def test_a_failed_query(api: httpx.AsyncClient, clock: Clock, sb: Sandbox) -> None:
    sb.v2.fail_next()
    qid = (await api.post(GEN, json=body(*LAST_MONTH))).json()["data"]["queryId"]
    clock.now += 5
    assert (await api.get(f"/v2/data/cost-usage/{qid}/status")).json()["data"] == {"status": "failed"}
    r = await api.get(f"/v2/data/cost-usage/{qid}/results")
    assert r.status_code == 424 and r.json()["error"] == "QUERY_FAILED"


async def test_pages_follow_the_cursor_and_cover_every_row(api: httpx.AsyncClient, clock: Clock) -> None:
    dims = [{"costCenter": "Kubernetes", "key": "namespace", "type": "k8s_namespace"}]
    whole = await run(api, clock, body(*LAST_MONTH, dimensions=dims))
    paged = await run(api, clock, body(*LAST_MONTH, dimensions=dims), page=7)
    assert paged == whole and len(whole) == 31 * 14  # 13 namespaces + rows without one
    r = await api.get("/v2/data/cost-usage/x/results", params={"pageSize": 10_001})
    assert r.status_code in (400, 404)


async def test_cursor_of_another_query_is_refused(api: httpx.AsyncClient, clock: Clock) -> None:
    a = (await api.post(GEN, json=body(*LAST_MONTH))).json()["data"]["queryId"]
    b = (await api.post(GEN, json=body(*LAST_MONTH))).json()["data"]["queryId"]
    clock.now += 5
    page = (await api.get(f"/v2/data/cost-usage/{a}/results", params={"pageSize": 3})).json()
    r = await api.get(f"/v2/data/cost-usage/{b}/results", params={"cursor": page["pagination"]["nextCursor"]})
    assert r.status_code == 400 and r.json()["error"] == "INVALID_CURSOR"
    big = await api.get(f"/v2/data/cost-usage/{a}/results", params={"pageSize": 10_001})
    assert big.status_code == 400 and "10000" in big.json()["message"]


async def test_fifty_requests_a_minute_per_route(api: httpx.AsyncClient, clock: Clock) -> None:
    for _ in range(50):
        assert (await api.get("/v2/query-language/keys")).status_code == 200
    limited = await api.get("/v2/query-language/keys")
    assert limited.status_code == 429 and limited.json()["error"] == "RATE_LIMIT_EXCEEDED"
    assert "retry-after" not in limited.headers  # none is documented for v2
    assert (await api.get("/v2/megabill/query-language/keys")).status_code == 200  # another route
    clock.now += 61
    assert (await api.get("/v2/query-language/keys")).status_code == 200


async def test_daily_query_cap(api: httpx.AsyncClient, clock: Clock, sb: Sandbox) -> None:
    sb.v2.limiter.daily_cap = 2
    assert (await api.post(GEN, json=body(*LAST_MONTH))).status_code == 200
    assert (await api.post(GEN, json=body(*LAST_MONTH))).status_code == 200
    refused = await api.post(GEN, json=body(*LAST_MONTH))
    assert refused.status_code == 429 and "per day" in refused.json()["message"]


async def test_the_fault_switchboard_covers_v2_routes(api: httpx.AsyncClient, sb: Sandbox) -> None:
    sb.faults.script(
        "POST /v2/data/cost-usage/generate-query", [Fault(status=503), Fault(body="html", status=200)]
    )
    assert (await api.post(GEN, json=body(*LAST_MONTH))).status_code == 503
    assert "html" in (await api.post(GEN, json=body(*LAST_MONTH))).headers["content-type"]
    assert (await api.post(GEN, json=body(*LAST_MONTH))).status_code == 200


async def _view_series(api: httpx.AsyncClient, sb: Sandbox, name: str) -> dict[str, float]:
    view = next(v for v in sb.account.views if v.name == name)
    first, last = LAST_MONTH
    payload = {
        "viewId": view.id,
        "date": {"unixTimeMillSecondsStart": day_ms(first), "unixTimeMillSecondsEnd": day_ms(last) + DAY_MS - 1},
    }
    data = (await api.post("/v1/cost/query-by-view", json=payload)).json()["data"]
    return {s["name"]: math.fsum(p["cost"] for p in s["data"]) for s in data}


async def test_v2_and_the_v1_views_are_sums_of_one_cost_table(
    api: httpx.AsyncClient, clock: Clock, sb: Sandbox
) -> None:
    everything = await run(api, clock, body(*LAST_MONTH))
    by_service = await _view_series(api, sb, "All costs by service")
    assert math.fsum(r["unblendedCost_sum"]["amount"] for r in everything) == pytest.approx(
        by_service["Total"], abs=0.01
    )
    k8s = {"costCenter": "Global", "key": "cost_center_type", "type": "billing_dimension", "operator": "oneOf"}
    dims = [{"costCenter": "Kubernetes", "key": "namespace", "type": "k8s_namespace"}]
    rows = await run(api, clock, body(*LAST_MONTH, dimensions=dims, filters={**k8s, "value": ["Kubernetes"]}))
    v2: dict[str, float] = {}
    for r in rows:
        name = r["Kubernetes_k8s_namespace_namespace"]
        v2[name] = v2.get(name, 0.0) + r["unblendedCost_sum"]["amount"]
    view = await _view_series(api, sb, "Kubernetes by namespace")
    assert set(v2) == set(view) - {"Total"}
    for name, amount in v2.items():
        assert amount == pytest.approx(view[name], abs=0.01)


async def test_grouping_by_a_virtual_tag_follows_its_rules(
    api: httpx.AsyncClient, clock: Clock, sb: Sandbox
) -> None:
    team = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Team")
    dims = [{"costCenter": "Virtual Tags", "key": team["id"], "type": "virtual_tag"}]
    rows = await run(api, clock, body(*LAST_MONTH, dimensions=dims))
    v2: dict[str, float] = {}
    for r in rows:
        name = r[f"Virtual Tags_virtual_tag_{team['id']}"]
        v2[name] = v2.get(name, 0.0) + r["unblendedCost_sum"]["amount"]
    view = await _view_series(api, sb, "Costs by team")
    assert {n: round(v, 2) for n, v in v2.items()} == {n: round(v, 2) for n, v in view.items() if n != "Total"}
    # The first matching rule wins: a checkout namespace row is "checkout" even though later rules exist.
    line = next(ln for ln in sb.account.costs.lines if ln.attrs.get(("Kubernetes", "namespace")) == "checkout")
    assert sb.account.row(line, LAST_MONTH[0])[("Virtual Tags", team["id"])] == "checkout"
    # Editing the tag moves the money, in v1 and v2 alike.
    team["rules"] = team["rules"][1:]
    sb.account.tags_changed()
    assert sb.account.row(line, LAST_MONTH[0])[("Virtual Tags", team["id"])] == "unallocated"
    after = await _view_series(api, sb, "Costs by team")
    assert "checkout" not in after


async def test_a_planted_plateau_shows_in_views_and_v2_alike(
    api: httpx.AsyncClient, clock: Clock, sb: Sandbox
) -> None:
    from finout_mcp.sandbox.costs import plant_spike
    from finout_mcp.sandbox.spikes import PlantedSpike

    view = next(v for v in sb.account.views if v.name == "Kubernetes by namespace")
    first = dt.date(2026, 10, 10)
    before = {d: view.cost("monitoring", first + dt.timedelta(days=d), TODAY) for d in range(-1, 4)}
    plant_spike(view, PlantedSpike("monitoring", first, 3, 2.0))
    after = {d: view.cost("monitoring", first + dt.timedelta(days=d), TODAY) for d in range(-1, 4)}
    assert [round(after[d] / before[d], 9) for d in range(-1, 4)] == [1.0, 2.0, 2.0, 2.0, 1.0]
    flt = {
        "costCenter": "Kubernetes",
        "key": "namespace",
        "type": "k8s_namespace",
        "operator": "is",
        "value": ["monitoring"],
    }
    rows = await run(api, clock, body(first, first + dt.timedelta(days=2), filters=flt))
    assert math.fsum(r["unblendedCost_sum"]["amount"] for r in rows) == pytest.approx(
        sum(after[d] for d in range(3))
    )
