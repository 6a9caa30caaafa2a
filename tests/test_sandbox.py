"""The sandbox Finout API: shapes, limits, validation, faults and scale."""

from __future__ import annotations

import datetime as dt
import json
import math
import socket
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest

from finout_mcp.sandbox import Fault, Sandbox, serve
from finout_mcp.sandbox.costs import HISTORY_DAYS

TODAY = dt.date(2025, 6, 15)
DAY = 86_400_000
AUTH = {"x-finout-client-id": "client-1", "x-finout-secret-key": "secret-1"}


def ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * DAY


def client_for(sb: Sandbox, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sb.app),
        base_url="http://sandbox/v1",
        headers=AUTH if headers is None else headers,
    )


@pytest.fixture
def sb() -> Sandbox:
    return Sandbox(seed=7, scale="demo", today=TODAY)


@pytest.fixture
async def client(sb: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(sb) as c:
        yield c


async def view_id(client: httpx.AsyncClient, name: str = "All costs by service") -> str:
    views = (await client.get("/view")).json()["data"]
    return next(v["id"] for v in views if v["name"] == name)


async def query(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/cost/query-by-view", json=body)


def window(first: dt.date, last: dt.date) -> dict[str, int]:
    return {"unixTimeMillSecondsStart": ms(first), "unixTimeMillSecondsEnd": ms(last) + DAY - 1}


# ------------------------------------------------------------------ auth & routing
@pytest.mark.parametrize(
    "headers",
    [{}, {"x-finout-client-id": "c"}, {"x-finout-client-id": "c", "x-finout-secret-key": ""}],
)
async def test_auth_required(sb: Sandbox, headers: dict[str, str]) -> None:
    async with client_for(sb, headers) as c:
        r = await c.get("/view")
    assert r.status_code == 401
    assert r.json()["message"] == "Unauthorized"
    assert r.json()["requestId"]
    assert sb.request_log[-1].status == 401


async def test_unknown_route_and_bad_json(client: httpx.AsyncClient, sb: Sandbox) -> None:
    r = await client.get("/nope")
    assert r.status_code == 404 and "requestId" in r.json()
    assert sb.request_log[-1].route is None
    r = await client.post(
        "/cost/query-by-view", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["message"]
    r = await client.post("/virtual-tags", content=b'{"name": ', headers={"content-type": "application/json"})
    assert r.status_code == 400


async def test_request_ids_unique(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/view")).json()["requestId"] for _ in range(3)}
    assert len(ids) == 3


# ------------------------------------------------------------------ views & costs
async def test_views_shape(client: httpx.AsyncClient) -> None:
    body = (await client.get("/view")).json()
    assert set(body) == {"data", "requestId"}
    assert len(body["data"]) >= 5
    assert all(set(v) == {"name", "id"} for v in body["data"])


async def test_query_default_range_and_total(client: httpx.AsyncClient) -> None:
    vid = await view_id(client)
    r = await query(client, {"viewId": vid})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"data", "request", "requestId"}
    assert body["request"] == {"viewId": vid}
    series = body["data"]
    assert series[0]["name"] == "Total"
    assert 8 <= len(series) - 1 <= 25
    times = [p["time"] for p in series[0]["data"]]
    assert len(times) == 30
    assert times[-1] == ms(TODAY - dt.timedelta(days=1))
    assert all(t % DAY == 0 for t in times)
    for i, point in enumerate(series[0]["data"]):
        parts = [s["data"][i]["cost"] for s in series[1:]]
        assert all(s["data"][i]["time"] == point["time"] for s in series[1:])
        assert point["cost"] == pytest.approx(math.fsum(parts), abs=1e-6)
        assert all(isinstance(c, float) and c >= 0 for c in parts)


async def test_query_range_limits(client: httpx.AsyncClient) -> None:
    vid = await view_id(client)
    ok = await query(client, {"viewId": vid, "date": window(TODAY - dt.timedelta(days=89), TODAY)})
    assert ok.status_code == 200
    assert len(ok.json()["data"][0]["data"]) == 90
    too_long = await query(client, {"viewId": vid, "date": window(TODAY - dt.timedelta(days=90), TODAY)})
    assert too_long.status_code == 400
    assert "90 days" in too_long.json()["message"]
    backwards = {"unixTimeMillSecondsStart": ms(TODAY), "unixTimeMillSecondsEnd": ms(TODAY) - DAY}
    assert (await query(client, {"viewId": vid, "date": backwards})).status_code == 400


@pytest.mark.parametrize(
    "date",
    [
        {"unixTimeMillSecondsStart": "", "unixTimeMillSecondsEnd": ""},
        {"unixTimeMillSecondsStart": 1717200000000},
        {"unixTimeMillSecondsStart": "1717200000000", "unixTimeMillSecondsEnd": 1717286399999},
        {"unixTimeMillSecondsStart": 1717200000000.5, "unixTimeMillSecondsEnd": 1717286399999},
        {},
        None,
    ],
)
async def test_query_blank_or_bad_date(client: httpx.AsyncClient, date: Any) -> None:
    r = await query(client, {"viewId": await view_id(client), "date": date})
    assert r.status_code == 400


async def test_query_errors(client: httpx.AsyncClient) -> None:
    assert (await query(client, {"viewId": "no-such-view"})).status_code == 404
    vid = await view_id(client)
    assert (await query(client, {"viewId": vid, "costType": "cheapCost"})).status_code == 400
    assert (await query(client, {})).status_code == 400


async def test_query_history_bounds_and_today_partial(client: httpx.AsyncClient) -> None:
    vid = await view_id(client)
    future = await query(
        client, {"viewId": vid, "date": window(TODAY - dt.timedelta(days=5), TODAY + dt.timedelta(days=20))}
    )
    times = [p["time"] for p in future.json()["data"][0]["data"]]
    assert times[-1] == ms(TODAY) and len(times) == 6
    totals = [p["cost"] for p in future.json()["data"][0]["data"]]
    assert totals[-1] < 0.7 * statistics.mean(totals[:-1])  # today is partial
    old = TODAY - dt.timedelta(days=HISTORY_DAYS + 20)
    r = await query(client, {"viewId": vid, "date": window(old, old + dt.timedelta(days=30))})
    points = r.json()["data"][0]["data"]
    assert points and points[0]["time"] == ms(TODAY - dt.timedelta(days=HISTORY_DAYS))


async def test_cost_types_scale(client: httpx.AsyncClient) -> None:
    vid = await view_id(client)
    base = (await query(client, {"viewId": vid, "costType": "unblendedCost"})).json()["data"][0]["data"]
    net = (await query(client, {"viewId": vid, "costType": "netAmortizedCost"})).json()["data"][0]["data"]
    assert net[0]["cost"] < base[0]["cost"]


async def test_costs_deterministic() -> None:
    results = []
    for seed in (7, 7, 8):
        sandbox = Sandbox(seed=seed, today=TODAY)
        async with client_for(sandbox) as c:
            results.append((await query(c, {"viewId": await view_id(c)})).json()["data"])
    assert results[0] == results[1]
    assert results[0] != results[2]


async def test_views_have_a_visible_spike(client: httpx.AsyncClient) -> None:
    vid = await view_id(client)
    series = (await query(client, {"viewId": vid})).json()["data"][1:]
    ratios = []
    for s in series:
        costs = [p["cost"] for p in s["data"]]
        ratios.append(max(costs) / statistics.median(costs))
    assert max(ratios) > 2.0


# ------------------------------------------------------------------ megabill
async def test_keys_shape(client: httpx.AsyncClient, sb: Sandbox) -> None:
    body = (await client.get("/megabill/query-language/keys")).json()
    assert set(body) == {"keys", "requestId", "accountId"}
    keys = body["keys"]
    assert len(keys) >= 60
    assert all(set(k) == {"costCenter", "key", "displayName"} for k in keys)
    centers = {k["costCenter"] for k in keys}
    expected = {"AWS", "GCP", "Azure", "Kubernetes", "Datadog", "Snowflake", "Custom Cost", "Global"}
    assert expected | {"databricks", "Virtual Tags"} <= centers
    assert any("/" in k["key"] and k["key"].endswith("=") for k in keys)
    regions = {k["costCenter"] for k in keys if k["displayName"] == "Region"}
    assert {"AWS", "GCP", "Azure"} <= regions
    vt = {k["key"]: k["displayName"] for k in keys if k["costCenter"] == "Virtual Tags"}
    assert vt == {tid: t["name"] for tid, t in sb.account.virtual_tags.items()}
    assert any(k["key"].startswith("f_") for k in keys)


async def test_values_percent_encoded_segments(client: httpx.AsyncClient, sb: Sandbox) -> None:
    keys = (await client.get("/megabill/query-language/keys")).json()["keys"]
    slash = next(k for k in keys if "/" in k["key"])
    path = f"/megabill/query-language/values/{quote(slash['costCenter'], safe='')}/{quote(slash['key'], safe='')}"
    r = await client.get(path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"values", "request", "requestId", "accountId"}
    assert body["request"] == {"costCenter": slash["costCenter"], "key": slash["key"]}
    assert body["values"]
    record = sb.request_log[-1]
    assert "%2F" in record.raw_path
    assert record.route == "/v1/megabill/query-language/values/{costCenter}/{key}"
    r = await client.get("/megabill/query-language/values/Custom%20Cost/vendor")
    assert r.status_code == 200 and "OpenAI" in r.json()["values"]
    r = await client.get("/megabill/query-language/values/AWS/aws_account_name")
    assert {"prod-eu", "prod-us", "staging", "dev", "data-prod", "shared-services"} <= set(r.json()["values"])
    # the slash unencoded is two segments: no such route
    assert (await client.get(f"/megabill/query-language/values/Kubernetes/{slash['key']}")).status_code == 404
    assert (await client.get("/megabill/query-language/values/AWS/no_such_key")).status_code == 404


async def test_values_of_virtual_tag(client: httpx.AsyncClient, sb: Sandbox) -> None:
    team = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Team")
    r = await client.get(f"/megabill/query-language/values/Virtual%20Tags/{team['id']}")
    assert {"checkout", "payments", "unallocated"} <= set(r.json()["values"])


# ------------------------------------------------------------------ virtual tags
def tag_named(sb: Sandbox, name: str) -> dict[str, Any]:
    return next(t for t in sb.account.virtual_tags.values() if t["name"] == name)


def walk_conditions(node: dict[str, Any]) -> list[dict[str, Any]]:
    for op in ("AND", "OR"):
        if op in node:
            return [c for child in node[op] for c in walk_conditions(child)]
    return [node]


async def test_virtual_tags_shape(client: httpx.AsyncClient, sb: Sandbox) -> None:
    body = (await client.get("/virtual-tags")).json()
    assert set(body) == {"virtualTags", "accountId", "requestId"}
    names = {t["name"] for t in body["virtualTags"]}
    assert {"Team", "Environment", "Business Unit"} <= names
    fields = {"id", "accountId", "name", "rules", "category", "defaultValue"}
    fields |= {"createdBy", "updatedBy", "createdAt", "updatedAt"}
    for tag in body["virtualTags"]:
        assert fields <= set(tag)
        dt.datetime.strptime(tag["createdAt"][:24], "%a %b %d %Y %H:%M:%S")
        assert tag["createdAt"].endswith("GMT+0000 (Coordinated Universal Time)")
        for rule in tag["rules"]:
            assert all("displayName" in c for c in walk_conditions(rule["filters"]))
    env = next(t for t in body["virtualTags"] if t["name"] == "Environment")
    assert any("timeframe" in r for r in env["rules"])
    bu = next(t for t in body["virtualTags"] if t["name"] == "Business Unit")
    team_id = tag_named(sb, "Team")["id"]
    assert {"key": team_id, "costCenter": "Virtual Tags"} in [r["to"] for r in bu["rules"]]
    # storage never keeps displayName
    stored = tag_named(sb, "Team")
    assert all("displayName" not in c for r in stored["rules"] for c in walk_conditions(r["filters"]))


async def test_get_tag_by_id(client: httpx.AsyncClient, sb: Sandbox) -> None:
    team = tag_named(sb, "Team")
    body = (await client.get(f"/virtual-tags/{team['id']}")).json()
    assert body["id"] == team["id"] and body["name"] == "Team" and body["defaultValue"] == "unallocated"
    assert (await client.get("/virtual-tags/does-not-exist")).status_code == 404
    assert (await client.put("/virtual-tags/does-not-exist", json={"name": "x", "rules": []})).status_code == 404
    assert (await client.delete("/virtual-tags/does-not-exist")).status_code == 404


GOOD_RULE = {
    "to": "Data Team",
    "filters": {
        "AND": [
            {"costCenter": "AWS", "key": "aws_account_name", "operator": "oneOf", "value": ["data-prod"]},
            {"OR": [{"costCenter": "Kubernetes", "key": "pl_app", "operator": "exists"}]},
        ]
    },
}


async def test_create_update_delete_roundtrip(client: httpx.AsyncClient, sb: Sandbox) -> None:
    body = {"name": "Cost Owner", "rules": [GOOD_RULE], "defaultValue": "untagged"}
    r = await client.post("/virtual-tags", json=body)
    assert r.status_code in (200, 201), r.text
    created = r.json()
    tid = created["id"]
    assert created["name"] == "Cost Owner" and tid in sb.account.virtual_tags
    assert (await client.post("/virtual-tags", json=body)).status_code == 409
    listed = (await client.get("/virtual-tags")).json()["virtualTags"]
    assert tid in {t["id"] for t in listed}
    keys = (await client.get("/megabill/query-language/keys")).json()["keys"]
    assert {"costCenter": "Virtual Tags", "key": tid, "displayName": "Cost Owner"} in keys

    new_rule = {
        "to": "Platform",
        "filters": {"costCenter": "AWS", "key": "service", "operator": "is", "value": "AmazonVPC"},
    }
    r = await client.put(f"/virtual-tags/{tid}", json={"name": "Cost Owner 2", "rules": [new_rule]})
    assert r.status_code == 200, r.text
    got = (await client.get(f"/virtual-tags/{tid}")).json()
    assert got["name"] == "Cost Owner 2"
    assert len(got["rules"]) == 1 and got["rules"][0]["to"] == "Platform"
    assert got["defaultValue"] is None  # full replace: what was not sent is gone
    # renaming onto another tag's name conflicts
    assert (await client.put(f"/virtual-tags/{tid}", json={"name": "Team", "rules": []})).status_code == 409

    r = await client.delete(f"/virtual-tags/{tid}")
    assert r.status_code in (200, 204)
    assert (await client.get(f"/virtual-tags/{tid}")).status_code == 404


def cond(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"costCenter": "AWS", "key": "aws_account_name", "operator": "oneOf", "value": ["dev"]}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


BAD_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("no name", {"rules": []}),
    ("blank name", {"name": " ", "rules": []}),
    ("rules not a list", {"name": "x", "rules": {"to": "a"}}),
    ("rule without to", {"name": "x", "rules": [{"filters": cond()}]}),
    ("rule without filters", {"name": "x", "rules": [{"to": "a"}]}),
    ("empty to", {"name": "x", "rules": [{"to": "", "filters": cond()}]}),
    (
        "to object, wrong cost center",
        {"name": "x", "rules": [{"to": {"key": "k", "costCenter": "AWS"}, "filters": cond()}]},
    ),
    (
        "to object, unknown tag",
        {"name": "x", "rules": [{"to": {"key": "nope", "costCenter": "Virtual Tags"}, "filters": cond()}]},
    ),
    ("unknown operator", {"name": "x", "rules": [{"to": "a", "filters": cond(operator="equals")}]}),
    ("oneOf with string", {"name": "x", "rules": [{"to": "a", "filters": cond(value="dev")}]}),
    ("oneOf empty", {"name": "x", "rules": [{"to": "a", "filters": cond(value=[])}]}),
    ("is with list", {"name": "x", "rules": [{"to": "a", "filters": cond(operator="is", value=["dev"])}]}),
    ("exists with value", {"name": "x", "rules": [{"to": "a", "filters": cond(operator="exists")}]}),
    (
        "contains without value",
        {"name": "x", "rules": [{"to": "a", "filters": cond(operator="contains", value=...)}]},
    ),
    ("unknown key", {"name": "x", "rules": [{"to": "a", "filters": cond(key="aws_acount_name")}]}),
    ("key in wrong cost center", {"name": "x", "rules": [{"to": "a", "filters": cond(costCenter="GCP")}]}),
    (
        "unknown virtual tag key",
        {"name": "x", "rules": [{"to": "a", "filters": cond(costCenter="Virtual Tags", key="zzz")}]},
    ),
    ("displayName sent", {"name": "x", "rules": [{"to": "a", "filters": cond(displayName="Account Name")}]}),
    (
        "nested displayName",
        {"name": "x", "rules": [{"to": "a", "filters": {"OR": [cond(), cond(displayName="A")]}}]},
    ),
    ("empty group", {"name": "x", "rules": [{"to": "a", "filters": {"AND": []}}]}),
    ("group and condition mixed", {"name": "x", "rules": [{"to": "a", "filters": {"AND": [cond()], "key": "k"}}]}),
    ("lower-case group", {"name": "x", "rules": [{"to": "a", "filters": {"and": [cond()]}}]}),
    ("not a filter", {"name": "x", "rules": [{"to": "a", "filters": [cond()]}]}),
    (
        "bad timeframe",
        {"name": "x", "rules": [{"to": "a", "filters": cond(), "timeframe": {"from": "2024-01-01"}}]},
    ),
    ("too many rules", {"name": "x", "rules": [{"to": f"v{i}", "filters": cond()} for i in range(1001)]}),
]


@pytest.mark.parametrize(("label", "body"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_invalid_virtual_tag_is_422(
    client: httpx.AsyncClient, sb: Sandbox, label: str, body: dict[str, Any]
) -> None:
    before = dict(sb.account.virtual_tags)
    r = await client.post("/virtual-tags", json=body)
    assert r.status_code == 422, (label, r.text)
    assert r.json()["message"]
    team = tag_named(sb, "Team")
    r = await client.put(f"/virtual-tags/{team['id']}", json=body)
    assert r.status_code == 422, (label, r.text)
    assert sb.account.virtual_tags == before


async def test_valid_edge_rules_accepted(client: httpx.AsyncClient, sb: Sandbox) -> None:
    team_id = tag_named(sb, "Team")["id"]
    rules = [
        {"to": {"key": team_id, "costCenter": "Virtual Tags"}, "filters": cond(operator="notExists", value=...)},
        {
            "to": "b",
            "filters": cond(
                key="a3ViZXJuZXRlczpsYWJlbF9zcGFya19zcGFya19leGVjX2lk",
                costCenter="Kubernetes",
                operator="contains",
                value="exec",
            ),
        },
        {"to": "c", "filters": cond(), "timeframe": {"from": 1704067200000, "to": 1735689599999}},
        {
            "to": "d",
            "filters": cond(costCenter="databricks", key="sku", operator="notOneOf", value=["SQL_COMPUTE"]),
        },
    ]
    r = await client.post("/virtual-tags", json={"name": "Edge", "rules": rules, "defaultValue": "untagged"})
    assert r.status_code in (200, 201), r.text


# ------------------------------------------------------------------ metadata
async def test_metadata_get_put(client: httpx.AsyncClient, sb: Sandbox) -> None:
    team = tag_named(sb, "Team")
    body = (await client.get(f"/virtual-tags/{team['id']}/metadata")).json()
    assert set(body) == {"metadata", "requestId"}
    entry = next(iter(body["metadata"].values()))
    assert set(entry) == {"groups", "customMetadata", "endpoints"}
    endpoint_ids = {e["id"] for e in sb.account.endpoints}
    assert all(e in endpoint_ids for v in body["metadata"].values() for e in v["endpoints"])

    new = {"checkout": {"groups": [], "customMetadata": {"owner": "li@acme.example"}, "endpoints": []}}
    r = await client.put(f"/virtual-tags/{team['id']}/metadata", json=new)
    assert r.status_code == 200, r.text
    got = (await client.get(f"/virtual-tags/{team['id']}/metadata")).json()["metadata"]
    assert got == new  # replaces everything
    # the PUT table's {"endpoint": id} references are accepted beside plain ids, and kept as sent
    email = sb.account.endpoints[0]["id"]
    objects = {"payments": {"groups": ["g1"], "endpoints": [{"endpoint": email}]}}
    assert (await client.put(f"/virtual-tags/{team['id']}/metadata", json=objects)).status_code == 200
    assert sb.account.metadata[team["id"]] == objects


async def test_metadata_put_refuses_the_wrapped_body(client: httpx.AsyncClient, sb: Sandbox) -> None:
    """The GET envelope is not a PUT body (finout-api.md, first correction): refused, nothing changes."""
    team = tag_named(sb, "Team")
    before = dict(sb.account.metadata[team["id"]])
    wrapped = {"metadata": {"checkout": {"groups": [], "customMetadata": {}, "endpoints": []}}}
    r = await client.put(f"/virtual-tags/{team['id']}/metadata", json=wrapped)
    assert r.status_code == 400 and "bare map" in r.json()["message"]
    assert sb.account.metadata[team["id"]] == before


async def test_metadata_values_may_leave_fields_out(client: httpx.AsyncClient, sb: Sandbox) -> None:
    """The GET example's "DevOps Team" has no `endpoints`: the sandbox serves such a value too."""
    env = tag_named(sb, "Environment")
    got = (await client.get(f"/virtual-tags/{env['id']}/metadata")).json()["metadata"]
    assert "endpoints" not in got["staging"] and "endpoints" in got["production"]


async def test_metadata_rejects_dots_and_unknown_tag(client: httpx.AsyncClient, sb: Sandbox) -> None:
    team = tag_named(sb, "Team")
    before = dict(sb.account.metadata[team["id"]])
    bad: dict[str, Any] = {"team.checkout": {"groups": [], "customMetadata": {}, "endpoints": []}}
    r = await client.put(f"/virtual-tags/{team['id']}/metadata", json=bad)
    assert r.status_code in (400, 422)
    assert "dot" in r.json()["message"]
    assert sb.account.metadata[team["id"]] == before
    assert (await client.get("/virtual-tags/nope/metadata")).status_code == 404
    assert (await client.put("/virtual-tags/nope/metadata", json={})).status_code == 404


# ------------------------------------------------------------------ cost guard
async def test_scans_shape(client: httpx.AsyncClient) -> None:
    body = (await client.get("/cost-guard/scans")).json()
    assert set(body) == {"scans", "requestId"}
    scans = body["scans"]
    assert len(scans) >= 8
    for s in scans:
        assert set(s) == {"scanId", "scanName", "scanLastRunTime", "scanMetadata"}
        assert s["scanMetadata"]["type"] in ("idle", "rightsizing")
        assert set(s["scanMetadata"]) == {"type", "costCenter", "analysisDays"}
    assert {"AWS", "GCP", "Kubernetes", "Datadog"} <= {s["scanMetadata"]["costCenter"] for s in scans}


def check_totals(body: dict[str, Any]) -> None:
    fields = [
        ("TotalCost", "TotalCost"),
        ("TotalWaste", "TotalWaste"),
        ("YearlyPotentialSavings", "YearlyPotentialSavings"),
    ]
    for scan_f, _ in fields:
        assert body[f"scan{scan_f}"] == pytest.approx(sum(g[f"group{scan_f}"] for g in body["data"]), abs=0.011)
        for g in body["data"]:
            assert g[f"group{scan_f}"] == pytest.approx(
                sum(r[f"resource{scan_f}"] for r in g["resources"]), abs=0.011
            )


async def test_recommendations(client: httpx.AsyncClient) -> None:
    scans = (await client.get("/cost-guard/scans")).json()["scans"]
    ec2 = next(s for s in scans if s["scanName"] == "EC2 - Rightsizing")
    r = await client.post("/cost-guard/scans-recommendations", json={"scanId": ec2["scanId"]})
    body = r.json()
    top = {"scanName", "scanLastRunTime", "scanTotalCost", "scanTotalWaste", "scanYearlyPotentialSavings"}
    assert top | {"scanMetadata", "data", "requestId"} == set(body)
    assert [g["group"] for g in body["data"]] == ["Total"]
    resources = body["data"][0]["resources"]
    assert 5 <= len(resources) <= 40
    res = resources[0]
    assert set(res["resourceMetadata"]) == {"accountId", "accountName", "instanceType", "productVCPU"}
    assert set(res["resourceMetrics"]) == {"maxEC2CpuUtilization", "usedCpu"}
    assert set(res["resourceRecommendations"]) == {"targetCpu", "targetMemory", "targetInstanceType"}
    assert any(
        x["resourceMetadata"]["instanceType"] == "m5.large"
        and x["resourceRecommendations"]["targetInstanceType"] == "t3.medium"
        for x in resources
    )
    check_totals(body)

    grouped = (
        await client.post(
            "/cost-guard/scans-recommendations",
            json={"scanId": ec2["scanId"], "groupBy": {"costCenter": "AWS", "key": "aws_account_name"}},
        )
    ).json()
    assert len(grouped["data"]) > 1
    assert grouped["scanTotalCost"] == pytest.approx(body["scanTotalCost"], abs=0.011)
    check_totals(grouped)
    for g in grouped["data"]:
        assert all(x["resourceMetadata"]["accountName"] == g["group"] for x in g["resources"])

    flt = {
        "AND": [
            {"costCenter": "AWS", "key": "aws_account_name", "operator": "oneOf", "value": ["prod-eu", "prod-us"]},
            {"OR": [{"costCenter": "AWS", "key": "service", "operator": "is", "value": "AmazonEC2"}]},
        ]
    }
    filtered = (
        await client.post("/cost-guard/scans-recommendations", json={"scanId": ec2["scanId"], "filters": flt})
    ).json()
    kept = [x for g in filtered["data"] for x in g["resources"]]
    assert 0 < len(kept) < len(resources)
    assert {x["resourceMetadata"]["accountName"] for x in kept} <= {"prod-eu", "prod-us"}
    check_totals(filtered)
    not_prod = {
        "costCenter": "AWS",
        "key": "aws_account_name",
        "operator": "notOneOf",
        "value": ["prod-eu", "prod-us"],
    }
    rest = (
        await client.post("/cost-guard/scans-recommendations", json={"scanId": ec2["scanId"], "filters": not_prod})
    ).json()
    assert len(kept) + sum(len(g["resources"]) for g in rest["data"]) == len(resources)


async def test_recommendation_fields_per_family(client: httpx.AsyncClient) -> None:
    expected = {
        "RDS - Rightsizing": ("resourceRecommendations", "targetInstanceType"),
        "EBS - Idle": ("resourceMetadata", "usageType"),
        "Elastic IP - Idle": ("resourceMetrics", "totalIdleHours"),
        "K8s - Deployment Rightsizing": ("resourceMetrics", "maxMemoryRequest"),
        "Logs - Idle (debug)": ("resourceMetadata", "datadogIndex"),
        "VM - Rightsizing": ("resourceRecommendations", "targetMachineSpec"),
        "SQL - Idle": ("resourceMetrics", "maxSqlCpuUtilization"),
    }
    scans = {s["scanName"]: s["scanId"] for s in (await client.get("/cost-guard/scans")).json()["scans"]}
    for name, (section, field) in expected.items():
        body = (await client.post("/cost-guard/scans-recommendations", json={"scanId": scans[name]})).json()
        resources = body["data"][0]["resources"]
        assert 5 <= len(resources) <= 40
        assert all(field in r[section] for r in resources), name


async def test_recommendations_errors(client: httpx.AsyncClient) -> None:
    assert (await client.post("/cost-guard/scans-recommendations", json={"scanId": "nope"})).status_code == 404
    scan_id = (await client.get("/cost-guard/scans")).json()["scans"][0]["scanId"]
    bad = {"scanId": scan_id, "filters": {"costCenter": "AWS", "key": "region", "operator": "near", "value": "x"}}
    assert (await client.post("/cost-guard/scans-recommendations", json=bad)).status_code == 400


# ------------------------------------------------------------------ endpoints
async def test_endpoints(client: httpx.AsyncClient, sb: Sandbox) -> None:
    body = (await client.get("/endpoints")).json()
    assert set(body) == {"endpoints", "requestId"}
    kinds = [e["type"] for e in body["endpoints"]]
    assert kinds.count("email") == 2 and kinds.count("slack") == 2 and kinds.count("msteams") == 1
    for e in body["endpoints"]:
        assert {"id", "type", "name", "createdBy", "createdAt"} <= set(e)
        assert ("configuration" in e) == (e["type"] != "msteams")
    r = await client.post(
        "/endpoints", json={"type": "email", "name": "CFO", "configuration": {"to": "cfo@acme.example"}}
    )
    assert r.status_code in (200, 201)
    created = r.json()
    assert set(created) == {"endpoint", "requestId"}
    assert created["endpoint"]["configuration"] == {"to": "cfo@acme.example"}
    assert created["endpoint"]["id"] in {e["id"] for e in (await client.get("/endpoints")).json()["endpoints"]}
    hook = "https://hooks.slack.com/services/T0000/B0002/ZZZZ"
    assert (
        await client.post("/endpoints", json={"type": "slack", "name": "s", "configuration": {"to": hook}})
    ).status_code == 200
    assert (
        await client.post("/endpoints", json={"type": "msteams", "name": "t", "configuration": {"to": "x"}})
    ).status_code == 400
    assert (
        await client.post("/endpoints", json={"type": "email", "name": "n", "configuration": {}})
    ).status_code == 400
    assert (await client.post("/endpoints", json={"type": "email", "name": "n"})).status_code == 400


# ------------------------------------------------------------------ concurrency & faults
async def test_sixth_concurrent_request_gets_429(sb: Sandbox) -> None:
    sb.faults.latency_ms = 150
    statuses: list[int] = []
    retry_after: list[str | None] = []
    async with client_for(sb) as c:

        async def one() -> None:
            r = await c.get("/view")
            statuses.append(r.status_code)
            retry_after.append(r.headers.get("retry-after"))

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(one)
    assert sorted(statuses) == [200] * 5 + [429]
    assert retry_after[statuses.index(429)] == "1"
    assert sb.stats.rate_limited == 1
    assert sb.stats.max_in_flight == 5
    assert sb.stats.in_flight == 0
    assert sb.stats.total_requests == 6
    sb.stats.reset()
    assert sb.stats.max_in_flight == 0 and sb.stats.total_requests == 0


async def test_limit_is_per_client(sb: Sandbox) -> None:
    sb.faults.latency_ms = 100
    statuses: list[int] = []

    async def one(i: int) -> None:
        async with client_for(sb, {"x-finout-client-id": f"c{i % 2}", "x-finout-secret-key": "s"}) as c:
            statuses.append((await c.get("/view")).status_code)

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(one, i)
    assert statuses == [200] * 8
    assert sb.stats.max_in_flight == 8


async def test_scripted_faults(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.faults.script("GET /v1/view", [Fault(status=429, retry_after=1), Fault(status=503)])
    r = await client.get("/view")
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert set(r.json()) == {"message", "error", "requestId"}
    assert (await client.get("/view")).status_code == 503
    assert (await client.get("/view")).status_code == 200
    assert sb.stats.rate_limited == 1
    # other routes are not affected by a route-specific script
    sb.faults.script("GET /v1/view", [Fault(status=500)])
    assert (await client.get("/endpoints")).status_code == 200
    assert (await client.get("/view")).status_code == 500


async def test_broken_bodies(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.faults.script("*", [Fault(status=502, body="html"), Fault(body="empty"), Fault(body="truncated")])
    r = await client.get("/view")
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")
    r = await client.get("/endpoints")
    assert r.status_code == 200 and r.content == b""
    r = await client.get("/view")
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()


async def test_dropped_connection(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.faults.script("GET /v1/view", [Fault(drop=True)])
    with pytest.raises(httpx.TransportError):
        await client.get("/view")
    assert sb.stats.in_flight == 0
    assert sb.request_log[-1].status == 0
    assert (await client.get("/view")).status_code == 200


async def test_delay_and_error_rate(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.faults.script("GET /v1/view", [Fault(delay_s=0.3)])
    started = time.perf_counter()
    assert (await client.get("/view")).status_code == 200
    assert time.perf_counter() - started >= 0.3
    sb.faults.clear()
    sb.faults.error_rate = 1.0
    sb.faults.error_status = 500
    assert (await client.get("/view")).status_code == 500
    sb.faults.clear()
    assert (await client.get("/view")).status_code == 200


async def test_http_control_routes(sb: Sandbox) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sb.app), base_url="http://sandbox") as c:
        doc = {"latency_ms": 5, "error_rate": 0, "script": {"GET /v1/view": [{"status": 429, "retry_after": 2}]}}
        assert (await c.post("/_sandbox/faults", json=doc)).status_code == 200
        assert sb.faults.latency_ms == 5
        r = await c.get("/v1/view", headers=AUTH)
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        stats = (await c.get("/_sandbox/stats")).json()
        assert stats == {"in_flight": 0, "max_in_flight": 1, "total_requests": 1, "rate_limited": 1}
        assert (await c.post("/_sandbox/reset")).status_code == 200
        assert sb.request_log == []
        assert (await c.get("/_sandbox/stats")).json()["total_requests"] == 0
        assert (await c.post("/_sandbox/faults", json={"clear": True})).status_code == 200
        assert sb.faults.latency_ms == 0
        assert (await c.post("/_sandbox/faults", json={"script": {"*": [{"body": "weird"}]}})).status_code == 400


async def test_request_log(sb: Sandbox, client: httpx.AsyncClient) -> None:
    team = tag_named(sb, "Team")
    await client.get(f"/virtual-tags/{team['id']}", params={"x": "1"})
    rec = sb.request_log[-1]
    assert (rec.method, rec.route, rec.status, rec.client_id) == ("GET", "/v1/virtual-tags/{id}", 200, "client-1")
    assert rec.query == "x=1" and rec.raw_path == f"/v1/virtual-tags/{team['id']}"
    sb.request_log.clear()
    assert sb.request_log == []


# ------------------------------------------------------------------ scale
async def test_large_scale_counts() -> None:
    big = Sandbox(seed=7, scale="large", today=TODAY)
    async with client_for(big) as c:
        keys = (await c.get("/megabill/query-language/keys")).json()["keys"]
        assert len(keys) == 50_000
        assert len({(k["costCenter"], k["key"]) for k in keys}) == 50_000
        r = await c.get("/megabill/query-language/values/Kubernetes/pl_pod_uid")
        values = r.json()["values"]
        assert len(values) == 200_000 and len(set(values[:1000])) == 1000
        filler = next(k for k in keys if k["key"].startswith("pl_") and k["key"][-1].isdigit())
        r = await c.get(f"/megabill/query-language/values/Kubernetes/{quote(filler['key'], safe='')}")
        assert r.status_code == 200 and r.json()["values"]


# ------------------------------------------------------------------ over a real port
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serve_over_http() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: serve(port=port, seed=7))
        async with httpx.AsyncClient(base_url=base) as c:
            for _ in range(100):
                try:
                    await c.get("/_sandbox/stats")
                    break
                except httpx.TransportError:
                    await anyio.sleep(0.05)
            r = await c.get("/v1/view", headers=AUTH)
            assert r.status_code == 200 and len(r.json()["data"]) >= 5
            assert (await c.get("/v1/view")).status_code == 401
            script = {"GET /v1/view": [{"delay_s": 0.5}, {"drop": True}]}
            assert (await c.post("/_sandbox/faults", json={"script": script})).status_code == 200
            with pytest.raises(httpx.ReadTimeout):
                await c.get("/v1/view", headers=AUTH, timeout=httpx.Timeout(5.0, read=0.1))
            with pytest.raises(httpx.TransportError):
                await c.get("/v1/view", headers=AUTH)
            stats = (await c.get("/_sandbox/stats")).json()
            assert stats["total_requests"] == 4
        tg.cancel_scope.cancel()
