"""FinoutClient against httpx.MockTransport replaying the documented Finout shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from finout_mcp.api.client import FinoutClient, parse_retry_after, segment
from finout_mcp.api.errors import (
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    FinoutAPIStatusError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnprocessableError,
)
from finout_mcp.api.models import (
    EndpointConfiguration,
    EndpointCreate,
    GroupBy,
    RecommendationsRequest,
    TagReference,
    ValueMetadata,
    VirtualTag,
    VirtualTagRule,
    VirtualTagWrite,
)
from finout_mcp.config import Settings
from finout_mcp.filters.canonical import strip_display_names

CLIENT_ID = "cid-4f2a"
SECRET = "sk-VERY-secret-9f8e7d6c"
BASE = "https://api.test/v1"

Handler = Callable[[httpx.Request], Any]


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "secret_key": SECRET,
        "api_url": BASE,
        "retry_max_attempts": 4,
        "retry_budget_s": 30.0,
        "max_concurrency": 5,
    }
    values.update(overrides)
    return Settings(**values)


class Recorder:
    """A MockTransport handler that records requests and replays canned responses."""

    def __init__(self, *responses: httpx.Response | Exception | Handler) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(item, Exception):
            raise item
        if callable(item) and not isinstance(item, httpx.Response):
            return item(request)  # type: ignore[no-any-return,unused-ignore]
        return item

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


def client_for(handler: Any, *, sleeps: list[float] | None = None, **overrides: Any) -> FinoutClient:
    recorded = sleeps if sleeps is not None else []

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    return FinoutClient(make_settings(**overrides), transport=httpx.MockTransport(handler), sleep=fake_sleep)


def ok(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


# ----------------------------------------------------------------------------- documented shapes

VIEWS = {"data": [{"name": "AWS by service", "id": "v-1"}, {"name": "K8s", "id": "v-2"}], "requestId": "r-views"}
COSTS = {
    "data": [
        {
            "name": "Total",
            "data": [{"time": 1717200000000, "cost": 123.45}, {"time": 1717286400000, "cost": 99.5}],
        },
        {"name": "AmazonEC2", "data": [{"time": 1717200000000, "cost": 100.0}]},
    ],
    "request": {"viewId": "v-1"},
    "requestId": "r-costs",
}
KEYS = {
    "keys": [
        {"costCenter": "AWS", "key": "aws_account_name", "displayName": "Account Name"},
        {
            "costCenter": "Kubernetes",
            "key": "a3ViZXJuZXRlczpsYWJlbF9zcGFya19zcGFya19leGVjX2lk",
            "displayName": "spark_exec_id",
        },
    ],
    "requestId": "r-keys",
    "accountId": "acc-1",
}
VALUES = {
    "values": ["prod-eu", "prod-us"],
    "request": {"costCenter": "AWS", "key": "aws_account_name"},
    "requestId": "r-values",
    "accountId": "acc-1",
}
TAG = {
    "id": "vt-1",
    "accountId": "acc-1",
    "name": "Team",
    "category": "Virtual Tags",
    "defaultValue": "untagged",
    "createdBy": "someone@example.com",
    "updatedBy": "someone@example.com",
    "createdAt": "Tue May 16 2023 13:15:53 GMT+0000 (Greenwich Mean Time)",
    "updatedAt": "Tue May 16 2023 13:15:53 GMT+0000 (Greenwich Mean Time)",
    "rules": [
        {
            "to": "Data Team",
            "filters": {
                "AND": [
                    {
                        "costCenter": "AWS",
                        "key": "aws_account_name",
                        "displayName": "Account Name",
                        "operator": "oneOf",
                        "value": ["prod-eu", "prod-us"],
                    },
                    {"OR": [{"costCenter": "AWS", "key": "service", "operator": "is", "value": "AmazonEC2"}]},
                ]
            },
            "timeframe": {"from": 1700000000000, "to": 1710000000000},
        },
        {
            "to": {"key": "vt-0", "costCenter": "Virtual Tags"},
            "filters": {"costCenter": "Kubernetes", "key": "pl_app", "operator": "exists"},
        },
    ],
}
TAGS = {"virtualTags": [TAG], "accountId": "acc-1", "requestId": "r-tags"}
METADATA = {
    "metadata": {
        "Data Team": {"groups": ["g-1"], "customMetadata": {"owner": "dana"}, "endpoints": ["ep-1"]},
    },
    "requestId": "r-meta",
}
SCANS = {
    "scans": [
        {
            "scanId": "s-1",
            "scanName": "Idle EC2",
            "scanLastRunTime": 1717200000000,
            "scanMetadata": {"type": "idle", "costCenter": "AWS", "analysisDays": 14},
        }
    ],
    "requestId": "r-scans",
}
RECOMMENDATIONS = {
    "scanName": "Idle EC2",
    "scanLastRunTime": 1717200000000,
    "scanTotalCost": 1000.0,
    "scanTotalWaste": 250.0,
    "scanYearlyPotentialSavings": 3000.0,
    "scanMetadata": {"type": "idle", "costCenter": "AWS", "analysisDays": 14},
    "data": [
        {
            "group": "Total",
            "groupTotalCost": 1000.0,
            "groupTotalWaste": 250.0,
            "groupYearlyPotentialSavings": 3000.0,
            "resources": [
                {
                    "resourceId": "i-0abc",
                    "resourceMetadata": {"region": "us-east-1"},
                    "resourceMetrics": {"cpu": 0.4},
                    "resourceRecommendations": {"action": "terminate"},
                    "resourceTotalCost": 1000.0,
                    "resourceTotalWaste": 250.0,
                    "resourceYearlyPotentialSavings": 3000.0,
                }
            ],
        }
    ],
    "requestId": "r-rec",
}
ENDPOINTS = {
    "endpoints": [
        {
            "type": "email",
            "name": "FinOps",
            "configuration": {"to": "finops@example.com"},
            "createdBy": "example",
            "createdAt": "Thu Dec 28 2023 14:09:57 GMT+0000 (Greenwich Mean Time)",
            "id": "7fecf9fb-4f36-4931-8d02-9cc53bb26af3",
        },
        {
            "type": "slack",
            "name": "Demo-Finout",
            "configuration": {"to": "https://hooks.slack.com/services/T0/B0/x"},
            "createdBy": "Demo-Finout",
            "createdAt": "Sun Feb 26 2023 14:33:35 GMT+0000 (Greenwich Mean Time)",
            "id": "4f806937-6f5b-478e-a81a-f4b2ece14bb1",
        },
        {"type": "msteams", "name": "Teams channel", "id": "ep-teams", "createdBy": "x", "createdAt": "y"},
    ],
    "requestId": "r-eps",
}
ENDPOINT_CREATED = {
    "endpoint": {
        "id": "ep-new",
        "type": "email",
        "name": "Alerts",
        "configuration": {"to": "alerts@example.com"},
        "createdBy": "api",
        "createdAt": "Sun Feb 26 2023 14:33:35 GMT+0000 (Greenwich Mean Time)",
    },
    "requestId": "r-ep-new",
}


def tag_write() -> VirtualTagWrite:
    return VirtualTagWrite.model_validate(
        {"name": "Team", "rules": TAG["rules"], "defaultValue": "untagged"},
    )


# ----------------------------------------------------------------------------- parsing


async def test_list_views_and_auth_headers() -> None:
    rec = Recorder(ok(VIEWS))
    async with client_for(rec) as client:
        views = await client.list_views()
    assert [v.id for v in views.data] == ["v-1", "v-2"]
    assert views.request_id == "r-views"
    req = rec.requests[0]
    assert req.method == "GET"
    assert req.url.raw_path == b"/v1/view"
    assert req.headers["x-finout-client-id"] == CLIENT_ID
    assert req.headers["x-finout-secret-key"] == SECRET
    assert req.headers["user-agent"].startswith("finout-mcp/")


async def test_query_costs_with_and_without_date() -> None:
    rec = Recorder(ok(COSTS))
    async with client_for(rec) as client:
        res = await client.query_costs(
            "v-1", start_ms=1717200000000, end_ms=1717372799999, cost_type="amortizedCost"
        )
        await client.query_costs("v-1")
    assert res.total is not None and res.total.data[0].cost == 123.45
    assert [g.name for g in res.groups] == ["AmazonEC2"]
    first, second = rec.bodies()
    assert rec.requests[0].url.raw_path == b"/v1/cost/query-by-view"
    assert first == {
        "viewId": "v-1",
        "date": {"unixTimeMillSecondsStart": 1717200000000, "unixTimeMillSecondsEnd": 1717372799999},
        "costType": "amortizedCost",
    }
    assert second == {"viewId": "v-1"}  # date omitted entirely
    assert rec.requests[0].headers["content-type"] == "application/json"


async def test_query_costs_needs_both_bounds() -> None:
    async with client_for(Recorder(ok(COSTS))) as client:
        with pytest.raises(ValueError):
            await client.query_costs("v-1", start_ms=1)


async def test_keys_and_values() -> None:
    rec = Recorder(ok(KEYS), ok(VALUES))
    async with client_for(rec) as client:
        keys = await client.list_keys()
        values = await client.list_values("AWS", "aws_account_name")
    assert keys.keys[0].label == "Account Name" and keys.account_id == "acc-1"
    assert values.values == ["prod-eu", "prod-us"]
    assert rec.requests[0].url.raw_path == b"/v1/megabill/query-language/keys"
    assert rec.requests[1].url.raw_path == b"/v1/megabill/query-language/values/AWS/aws_account_name"


@pytest.mark.parametrize(
    ("cost_center", "key", "raw"),
    [
        ("Custom Cost", "f_usage_type", b"/v1/megabill/query-language/values/Custom%20Cost/f_usage_type"),
        (
            "Kubernetes",
            "a3Vi/ZXJu+ZXRl==",
            b"/v1/megabill/query-language/values/Kubernetes/a3Vi%2FZXJu%2BZXRl%3D%3D",
        ),
        ("AWS", "../../virtual-tags", b"/v1/megabill/query-language/values/AWS/..%2F..%2Fvirtual-tags"),
        ("AWS", "..", b"/v1/megabill/query-language/values/AWS/%2E%2E"),
        ("AWS", "a?b#c&d", b"/v1/megabill/query-language/values/AWS/a%3Fb%23c%26d"),
        ("Global", "café", b"/v1/megabill/query-language/values/Global/caf%C3%A9"),
    ],
)
async def test_path_segments_are_encoded(cost_center: str, key: str, raw: bytes) -> None:
    rec = Recorder(ok(VALUES))
    async with client_for(rec) as client:
        await client.list_values(cost_center, key)
    assert rec.requests[0].url.raw_path == raw
    assert rec.requests[0].url.query == b""


async def test_tag_id_stays_in_its_segment() -> None:
    rec = Recorder(ok(TAG))
    async with client_for(rec) as client:
        await client.get_virtual_tag("../view?x=1#frag")
    assert rec.requests[0].url.raw_path == b"/v1/virtual-tags/..%2Fview%3Fx%3D1%23frag"


def test_segment_helper() -> None:
    assert segment("a b/c=") == "a%20b%2Fc%3D"
    assert segment(".") == "%2E"


async def test_empty_id_is_refused() -> None:
    async with client_for(Recorder(ok(TAG))) as client:
        with pytest.raises(ValueError):
            await client.get_virtual_tag(" ")


async def test_virtual_tag_reads() -> None:
    rec = Recorder(ok(TAGS), ok(TAG), ok(METADATA))
    async with client_for(rec) as client:
        tags = await client.list_virtual_tags()
        tag = await client.get_virtual_tag("vt-1")
        meta = await client.get_virtual_tag_metadata("vt-1")
    assert tags.virtual_tags[0].name == "Team"
    assert tag.rules[0].to == "Data Team"  # "to" as a string
    assert isinstance(tag.rules[1].to, TagReference) and tag.rules[1].to.key == "vt-0"  # "to" as an object
    assert tag.rules[0].timeframe is not None and tag.rules[0].timeframe.from_ == 1700000000000
    assert meta.metadata["Data Team"].endpoints == ["ep-1"]
    assert [r.url.raw_path for r in rec.requests] == [
        b"/v1/virtual-tags",
        b"/v1/virtual-tags/vt-1",
        b"/v1/virtual-tags/vt-1/metadata",
    ]


async def test_create_virtual_tag_strips_display_name_and_server_fields() -> None:
    rec = Recorder(ok(TAG))
    # a body built from a GET result, carrying server-owned fields as extras
    body = VirtualTagWrite.model_validate(TAG)
    async with client_for(rec) as client:
        created = await client.create_virtual_tag(body)
    assert created.id == "vt-1"
    sent = rec.bodies()[0]
    assert rec.requests[0].method == "POST" and rec.requests[0].url.raw_path == b"/v1/virtual-tags"
    # category is the tag's, not Finout's bookkeeping: it goes back (finout-api.md "Tag object")
    assert set(sent) == {"name", "rules", "defaultValue", "category"}
    assert "displayName" not in json.dumps(sent)
    assert sent["rules"][0]["filters"]["AND"][0] == {
        "costCenter": "AWS",
        "key": "aws_account_name",
        "operator": "oneOf",
        "value": ["prod-eu", "prod-us"],
    }
    assert sent["rules"][0]["timeframe"] == {"from": 1700000000000, "to": 1710000000000}
    assert sent["rules"][1]["to"] == {"key": "vt-0", "costCenter": "Virtual Tags"}


async def test_update_and_delete_virtual_tag() -> None:
    rec = Recorder(ok(TAG), httpx.Response(200, content=b""), httpx.Response(204))
    async with client_for(rec) as client:
        updated = await client.update_virtual_tag("vt-1", tag_write())
        await client.delete_virtual_tag("vt-1")
        await client.delete_virtual_tag("vt-2")
    assert updated.name == "Team"
    assert [(r.method, r.url.raw_path) for r in rec.requests] == [
        ("PUT", b"/v1/virtual-tags/vt-1"),
        ("DELETE", b"/v1/virtual-tags/vt-1"),
        ("DELETE", b"/v1/virtual-tags/vt-2"),
    ]
    assert "displayName" not in rec.requests[0].content.decode()


async def test_update_without_tag_in_answer_rereads_it() -> None:
    rec = Recorder(ok({"requestId": "r-put"}), ok(TAG))
    async with client_for(rec) as client:
        updated = await client.update_virtual_tag("vt-1", tag_write())
    assert updated.id == "vt-1"
    assert [r.method for r in rec.requests] == ["PUT", "GET"]


async def test_set_metadata_sends_the_bare_value_map() -> None:
    """finout-api.md, first correction: the PUT body is the map keyed by tag value, never wrapped."""
    rec = Recorder(ok({"requestId": "r-put"}))
    meta = {"Data Team": ValueMetadata(groups=["g-1"], custom_metadata={"owner": "dana"}, endpoints=["ep-1"])}
    async with client_for(rec) as client:
        ack = await client.set_virtual_tag_metadata("vt-1", meta)
    assert ack.status == 200 and ack.request_id == "r-put"
    req = rec.requests[0]
    assert req.method == "PUT" and req.url.raw_path == b"/v1/virtual-tags/vt-1/metadata"
    assert rec.bodies()[0] == {
        "Data Team": {"groups": ["g-1"], "customMetadata": {"owner": "dana"}, "endpoints": ["ep-1"]}
    }


async def test_scans_and_recommendations() -> None:
    rec = Recorder(ok(SCANS), ok(RECOMMENDATIONS))
    body = RecommendationsRequest(
        scan_id="s-1",
        filters={"costCenter": "AWS", "key": "region", "displayName": "Region", "operator": "is", "value": "x"},
        group_by=GroupBy(cost_center="AWS", key="region"),
    )
    async with client_for(rec) as client:
        scans = await client.list_scans()
        recs = await client.get_scan_recommendations(body)
    assert scans.scans[0].scan_metadata.analysis_days == 14
    assert recs.data[0].group == "Total" and recs.data[0].resources[0].resource_id == "i-0abc"
    assert rec.requests[1].url.raw_path == b"/v1/cost-guard/scans-recommendations"
    assert rec.bodies()[1] == {
        "scanId": "s-1",
        "filters": {"costCenter": "AWS", "key": "region", "operator": "is", "value": "x"},
        "groupBy": {"costCenter": "AWS", "key": "region"},
    }


async def test_endpoints() -> None:
    rec = Recorder(ok(ENDPOINTS), ok(ENDPOINT_CREATED))
    async with client_for(rec) as client:
        eps = await client.list_endpoints()
        created = await client.create_endpoint(
            EndpointCreate(
                type="email", name="Alerts", configuration=EndpointConfiguration(to="alerts@example.com")
            )
        )
    assert [e.type for e in eps.endpoints] == ["email", "slack", "msteams"]
    assert eps.endpoints[2].configuration is None  # msteams: no configuration
    assert created.id == "ep-new"
    # `to` in configuration (every example) and at top level (the older table): right under both readings
    assert rec.bodies()[1] == {
        "type": "email",
        "name": "Alerts",
        "configuration": {"to": "alerts@example.com"},
        "to": "alerts@example.com",
    }


def test_strip_display_names_any_depth() -> None:
    f = {"OR": [{"AND": [{"displayName": "x", "key": "k"}]}, {"displayName": "y", "key": "j"}]}
    assert strip_display_names(f) == {"OR": [{"AND": [{"key": "k"}]}, {"key": "j"}]}


def test_write_model_from_parsed_tag() -> None:
    tag = VirtualTag.model_validate(TAG)
    write = VirtualTagWrite(name=tag.name, rules=tag.rules, default_value=tag.default_value)
    assert isinstance(write.rules[0], VirtualTagRule)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, InvalidRequestError, False),
        (401, AuthenticationError, False),
        (403, PermissionDeniedError, False),
        (404, NotFoundError, False),
        (409, ConflictError, False),
        (422, UnprocessableError, False),
        (429, RateLimitedError, True),
        (500, ServerError, False),
        (502, ServerError, True),
        (503, ServerError, True),
        (504, ServerError, True),
    ],
)
async def test_error_class_per_status(status: int, cls: type[FinoutAPIStatusError], retryable: bool) -> None:
    rec = Recorder(httpx.Response(status, json={"message": "Virtual tag not found", "requestId": "req-1a2b"}))
    async with client_for(rec, retry_max_attempts=1) as client:
        with pytest.raises(cls) as info:
            await client.get_virtual_tag("vt-9")
    err = info.value
    assert type(err) is cls
    assert err.status == status and err.request_id == "req-1a2b" and err.message == "Virtual tag not found"
    assert err.retryable is retryable
    assert err.method == "GET" and err.path == "/virtual-tags/vt-9"
    text = str(err)
    assert f"{status}" in text and "GET /virtual-tags/vt-9" in text and "req-1a2b" in text
    assert "Virtual tag not found" in text
    assert err.__cause__ is None and err.__context__ is None


async def test_404_on_one_id_names_that_id() -> None:
    rec = Recorder(
        ok(VIEWS), httpx.Response(404, json={"message": "Virtual tag not found", "requestId": "req-1a2b"})
    )
    async with client_for(rec) as client:
        await client.list_views()  # the base URL is proven to reach Finout
        with pytest.raises(NotFoundError) as info:
            await client.get_virtual_tag("abc")
    assert str(info.value) == (
        "Finout API returned 404 Not Found for GET /virtual-tags/abc: Virtual tag not found "
        "(requestId req-1a2b). No virtual tag has the id 'abc' in this account; check that id."
    )
    assert not info.value.base_url_wrong and len(rec.requests) == 2


async def test_404_on_one_id_probes_the_base_url_once_when_nothing_succeeded_yet() -> None:
    by_path = {"/v1/view": ok(VIEWS)}
    rec = Recorder(lambda r: by_path.get(r.url.path, httpx.Response(404, json={"message": "no such tag"})))
    async with client_for(rec) as client:
        with pytest.raises(NotFoundError) as info:
            await client.get_virtual_tag("abc")
        with pytest.raises(NotFoundError):
            await client.get_virtual_tag("def")
    assert not info.value.base_url_wrong and "'abc'" in str(info.value)
    assert [r.url.path for r in rec.requests] == ["/v1/virtual-tags/abc", "/v1/view", "/v1/virtual-tags/def"]


@pytest.mark.parametrize("first", ["list", "id"])
async def test_404_on_every_path_blames_the_base_url(first: str) -> None:
    """A base URL without /v1 (or another host's API): every path is 404, and the advice is
    FINOUT_API_URL, not 'check the view id'."""
    rec = Recorder(httpx.Response(404, text="<html>Not Found</html>", headers={"content-type": "text/html"}))
    async with client_for(rec, api_url="https://api.test") as client:
        with pytest.raises(NotFoundError) as info:
            if first == "list":
                await client.list_virtual_tags()
            else:
                await client.query_costs("view-1")
    err = info.value
    assert err.base_url_wrong and "FINOUT_API_URL" in str(err) and "https://app.finout.io/v1" in str(err)
    assert "base URL is wrong" in str(err) and "view-1" not in err.hint


async def test_error_message_falls_back_to_error_field() -> None:
    rec = Recorder(httpx.Response(422, json={"error": "Invalid composition", "requestId": "r-9"}))
    async with client_for(rec) as client:
        with pytest.raises(UnprocessableError) as info:
            await client.create_virtual_tag(tag_write())
    assert info.value.message == "Invalid composition"
    assert "check its rules" in str(info.value)  # the tool to call is named by the server layer
    assert len(rec.requests) == 1


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (
            httpx.Response(
                502, headers={"content-type": "text/html"}, content=b"<html>" + b"x" * 5000 + b"</html>"
            ),
            "non-JSON body (text/html)",
        ),
        (httpx.Response(503, content=b""), "empty body"),
        (
            httpx.Response(500, headers={"content-type": "application/json"}, content=b'{"message": "bo'),
            "truncated or invalid JSON body",
        ),
    ],
)
async def test_error_bodies_that_are_not_json(response: httpx.Response, reason: str) -> None:
    async with client_for(Recorder(response), retry_max_attempts=1) as client:
        with pytest.raises(ServerError) as info:
            await client.list_views()
    assert info.value.message.startswith(reason)
    assert "<html>" not in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (
            httpx.Response(200, headers={"content-type": "text/html"}, content=b"<!doctype html><p>Login</p>"),
            "non-JSON",
        ),
        (httpx.Response(200, content=b""), "empty body"),
        (
            httpx.Response(200, headers={"content-type": "application/json"}, content=b'{"data": [{"id": "v'),
            "truncated",
        ),
        (ok({"data": "not a list", "requestId": "r-bad"}), "unexpected response shape"),
        (ok([1, 2, 3]), "unexpected response shape"),
    ],
)
async def test_malformed_success_bodies(response: httpx.Response, reason: str) -> None:
    async with client_for(Recorder(response)) as client:
        with pytest.raises(MalformedResponseError) as info:
            await client.list_views()
    err = info.value
    assert err.status == 200 and reason in err.message
    assert "Login" not in str(err)
    if reason == "unexpected response shape" and "r-bad" in response.content.decode():
        assert err.request_id == "r-bad"


async def test_redirect_is_not_followed() -> None:
    rec = Recorder(httpx.Response(302, headers={"location": "https://login.example.com"}))
    async with client_for(rec) as client:
        with pytest.raises(MalformedResponseError) as info:
            await client.list_views()
    assert "FINOUT_API_URL" in str(info.value)


# ----------------------------------------------------------------------------- retries


async def test_retry_after_seconds_is_honoured() -> None:
    sleeps: list[float] = []
    rec = Recorder(
        httpx.Response(429, headers={"retry-after": "2"}, json={"message": "Too many requests"}),
        httpx.Response(503, headers={"retry-after": "1.5"}),
        ok(VIEWS),
    )
    async with client_for(rec, sleeps=sleeps) as client:
        views = await client.list_views()
        assert client.stats.retries == 2 and client.stats.requests_sent == 3
    assert views.data and sleeps == [2.0, 1.5]


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0.0


async def test_backoff_full_jitter_bounds_and_attempt_limit() -> None:
    sleeps: list[float] = []
    rec = Recorder(httpx.Response(502, json={"message": "bad gateway"}))
    async with client_for(rec, sleeps=sleeps, retry_max_attempts=4) as client:
        with pytest.raises(ServerError) as info:
            await client.list_keys()
    assert len(rec.requests) == 4 and info.value.attempts == 4
    assert len(sleeps) == 3
    for i, s in enumerate(sleeps):
        assert 0 <= s <= min(8.0, 0.5 * 2**i)


async def test_retry_budget_is_never_exceeded() -> None:
    sleeps: list[float] = []
    rec = Recorder(httpx.Response(429, headers={"retry-after": "4"}))
    async with client_for(rec, sleeps=sleeps, retry_max_attempts=10, retry_budget_s=10.0) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.list_views()
    assert sum(sleeps) <= 10.0
    assert sleeps == [4.0, 4.0]  # a third 4 s wait would pass the 10 s budget: give up
    assert info.value.retry_after == 4.0 and "retry after 4 s" in str(info.value)


async def test_retry_after_longer_than_budget_gives_up_at_once() -> None:
    sleeps: list[float] = []
    rec = Recorder(httpx.Response(429, headers={"retry-after": "120"}))
    async with client_for(rec, sleeps=sleeps, retry_budget_s=30.0) as client:
        with pytest.raises(RateLimitedError):
            await client.list_views()
    assert sleeps == [] and len(rec.requests) == 1


async def test_500_and_4xx_are_not_retried() -> None:
    for status in (500, 400, 404, 422):
        rec = Recorder(httpx.Response(status, json={"message": "no"}))
        async with client_for(rec) as client:
            with pytest.raises(FinoutAPIStatusError):
                await client.list_views()
        assert len(rec.requests) == 1, status


async def test_idempotent_calls_retry_transport_errors() -> None:
    sleeps: list[float] = []

    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    rec = Recorder(boom, httpx.ConnectError("refused"), ok(VIEWS))
    async with client_for(rec, sleeps=sleeps) as client:
        assert (await client.list_views()).data
    assert len(rec.requests) == 3 and len(sleeps) == 2


async def test_transport_error_exhaustion_is_typed() -> None:
    rec = Recorder(lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("timed out", request=r)))
    async with client_for(rec, retry_max_attempts=2) as client:
        with pytest.raises(APITimeoutError) as info:
            await client.list_views()
    assert isinstance(info.value, TransportError) and isinstance(info.value, TimeoutError)
    assert info.value.retryable and len(rec.requests) == 2


async def test_put_and_delete_retry_on_504() -> None:
    rec = Recorder(httpx.Response(504), httpx.Response(204), httpx.Response(504), ok(TAG))
    async with client_for(rec) as client:
        await client.delete_virtual_tag("vt-1")
        await client.update_virtual_tag("vt-1", tag_write())
    assert [r.method for r in rec.requests] == ["DELETE", "DELETE", "PUT", "PUT"]


async def test_create_not_resent_after_read_timeout() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    rec = Recorder(timeout)
    sleeps: list[float] = []
    async with client_for(rec, sleeps=sleeps) as client:
        with pytest.raises(TransportError) as info:
            await client.create_virtual_tag(tag_write())
    assert len(rec.requests) == 1 and sleeps == []
    err = info.value
    assert err.outcome_unknown and not err.retryable
    assert "may have been created" in str(err) and "list the virtual tags" in str(err)


@pytest.mark.parametrize("status", [500, 502, 504, 503])
async def test_create_not_resent_after_ambiguous_5xx(status: int) -> None:
    rec = Recorder(httpx.Response(status, json={"message": "upstream"}), ok(ENDPOINT_CREATED))
    async with client_for(rec) as client:
        with pytest.raises(ServerError) as info:
            await client.create_endpoint(
                EndpointCreate(type="email", name="A", configuration=EndpointConfiguration(to="a@example.com"))
            )
    assert len(rec.requests) == 1
    assert info.value.outcome_unknown and "list the endpoints" in str(info.value)


async def test_create_resent_after_429_and_connect_error_and_503_with_retry_after() -> None:
    sleeps: list[float] = []
    rec = Recorder(
        httpx.Response(429, headers={"retry-after": "1"}),
        httpx.ConnectError("refused"),
        httpx.Response(503, headers={"retry-after": "2"}),
        ok(TAG),
    )
    async with client_for(rec, sleeps=sleeps) as client:
        tag = await client.create_virtual_tag(tag_write())
    assert tag.id == "vt-1"
    assert len(rec.requests) == 4
    assert sleeps[0] == 1.0 and sleeps[2] == 2.0
    assert len({r.content for r in rec.requests}) == 1  # the very same body each time


async def test_slot_is_released_while_backing_off() -> None:
    seen: list[int] = []
    client = client_for(Recorder(httpx.Response(429, headers={"retry-after": "0"}), ok(VIEWS)))

    async def sleep(seconds: float) -> None:
        seen.append(client.stats.in_flight)

    client._sleep = sleep
    async with client:
        await client.list_views()
    assert seen == [0]


async def test_never_more_than_five_in_flight() -> None:
    state = {"now": 0, "max": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await anyio.sleep(0.01)
        state["now"] -= 1
        return ok(VIEWS)

    client = FinoutClient(make_settings(), transport=httpx.MockTransport(handler))
    async with client, anyio.create_task_group() as tg:
        for _ in range(30):
            tg.start_soon(client.list_views)
    assert state["max"] == 5
    assert client.stats.max_in_flight == 5 and client.stats.requests_sent == 30 and client.stats.in_flight == 0


async def test_max_concurrency_setting_is_respected() -> None:
    state = {"now": 0, "max": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await anyio.sleep(0.005)
        state["now"] -= 1
        return ok(KEYS)

    client = FinoutClient(make_settings(max_concurrency=2), transport=httpx.MockTransport(handler))
    async with client, anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(client.list_keys)
    assert state["max"] == 2


async def test_cancelled_call_keeps_its_slot_until_finout_answers() -> None:
    """Finout counts a request until it has answered it, whether or not we still wait: a cancelled
    call's request keeps its slot until the answer arrives, then frees it."""
    answer = anyio.Event()
    sent: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if len(sent) == 1:
            await answer.wait()
        return ok(VIEWS)

    async with FinoutClient(make_settings(max_concurrency=1), transport=httpx.MockTransport(handler)) as client:
        with anyio.move_on_after(0.05):
            await client.list_views()
        assert client.stats.in_flight == 1  # still at Finout
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.list_views)
            await anyio.sleep(0.1)
            assert len(sent) == 1  # the second call waits for the slot
            answer.set()
        assert len(sent) == 2 and client.stats.in_flight == 0 and client.stats.max_in_flight == 1


async def test_call_cancelled_while_waiting_for_a_slot_is_never_sent() -> None:
    release = anyio.Event()
    sent: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        await release.wait()
        return ok(VIEWS)

    async with FinoutClient(make_settings(max_concurrency=1), transport=httpx.MockTransport(handler)) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.list_views)
            await anyio.sleep(0.05)
            with anyio.move_on_after(0.05):
                await client.list_keys()  # waits for the slot, then gives up
            release.set()
        await anyio.sleep(0.05)
        assert sent == ["/v1/view"] and client.stats.in_flight == 0
