"""The client against Finout's *documented* shapes, not against our own sandbox's reading.

Three kinds of test, each replayed through ``httpx.MockTransport``:
- the documented examples (``finout-api-v1-live.md``, trailing commas fixed) and every
  documented alternative (``X`` or ``data.X``, values as objects, object ``defaultValue``,
  times as strings, ``to`` at top level, ``{"endpoint": id}``...) must be read;
- for each strict-recognition rule, a body of another shape must raise a malformed-response
  error naming the operation and the field, never come back as an empty success;
- the metadata write sends the bare map, and its read-back catches an API that read it otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from finout_mcp.api.client import FinoutClient
from finout_mcp.api.errors import MalformedResponseError
from finout_mcp.api.models import TagReference, ValueMetadata, parse_moment
from finout_mcp.config import Settings
from finout_mcp.services.catalog import Catalog
from finout_mcp.services.changelog import ChangeLog
from finout_mcp.services.errors import InputError, WriteVerificationError
from finout_mcp.services.writes import Writer
from tests.support import call, call_error, demo

SECRET = "sk-fidelity-1234abcd"
BASE = "https://api.test/v1"


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> FinoutClient:
    settings = Settings(client_id="cid", secret_key=SECRET, api_url=BASE, retry_max_attempts=1)
    return FinoutClient(settings, transport=httpx.MockTransport(handler))


def answering(body: Any, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(status, json=body)


# ----------------------------------------------------------------------------- documented examples
# finout-api-v1-live.md §1, §3, §5, §6, §7, §8 (verbatim but for trailing commas and shortening)

VIEWS_DOC = {
    "data": [
        {"name": "Cost Ratio - Weightings by Group Name", "id": "25568bb9-7d9b-4b72-9361-07abcb4e5f29"},
        {"name": "K8s by App_Component", "id": "f76be053-1138-431f-a6e1-9f6d1852398b"},
    ],
    "requestId": "05ac7c0f-2e85-4af0-8ef7-3ace11e420d7",
}
KEYS_DOC = {
    "keys": [
        {"costCenter": "Kubernetes", "key": "deployment", "displayName": "deployment"},
        {"costCenter": "AWS", "key": "f_usage_type", "displayName": "Usage Type"},
        {"costCenter": "databricks", "key": "run_name", "displayName": "run_name"},
        {"costCenter": "Custom Cost", "key": "customCost_QmFtYmEbabababoi", "displayName": "Bamba"},
    ],
    "requestId": "d4e8c06b-9fd3-4a80-87bd-d13878fa9bd9",
    "accountId": "e6ad4c08-9ecd-4592-be61-7a13ad456259",
}
KEYS_OLD_ENVELOPE = {
    "request": {},
    "request_id": "12345",
    "error": None,
    "keys": [{"costCenter": "Azure", "key": "accountownerid", "displayName": "Account Owner Id"}],
}
TAGS_DOC = {
    "accountId": "e6ad4c08-9ecd-4592-be61-7a13ad456259",
    "requestId": "6e0f327e-9948-440b-b577-d0203aa374e9",
    "virtualTags": [
        {
            "id": "2e29ad96-3616-43d7-9858-a00477457e6a",
            "accountId": "e6ad4c08-9ecd-4592-be61-7a13ad456259",
            "name": "Demo Feature cost",
            "defaultValue": "unallocated",
            "createdBy": "user@example.com",
            "updatedBy": "user@example.com",
            "createdAt": "Mon Sep 09 2024 21:47:55 GMT+0000 (Greenwich Mean Time)",
            "updatedAt": "Wed Aug 13 2025 17:55:07 GMT+0000 (Greenwich Mean Time)",
            "rules": [
                {
                    "to": "Shared IT",
                    "filters": {
                        "OR": [
                            {
                                "costCenter": "Global",
                                "key": "cost_center_type",
                                "displayName": "Cost Center",
                                "operator": "oneOf",
                                "value": ["Azure", "databricks", "Datadog", "GCP", "kubernetes", "snowflake"],
                            },
                            {
                                "costCenter": "Global",
                                "key": "cost_center_type",
                                "displayName": "Cost Center",
                                "operator": "contains",
                                "value": "Custom",
                            },
                        ]
                    },
                    "timeframe": {"from": 1756166400000, "to": 1756166400100},
                }
            ],
        },
        {
            "id": "4f816fc1-6b3a-4902-b6b5-9759ba5ca83c",
            "name": "SNOW/Chase/Customer Chargeback",
            "defaultValue": "unallocated",
            "rules": [
                {
                    "to": {"key": "cc36dc5e-68b8-4f3d-b811-e24a7876b636", "costCenter": "Virtual Tags"},
                    "filters": {
                        "costCenter": "Virtual Tags",
                        "key": "cc36dc5e-68b8-4f3d-b811-e24a7876b636",
                        "displayName": "Customer",
                        "operator": "notOneOf",
                        "value": ["Shared Platform"],
                    },
                }
            ],
        },
        {  # the older snapshot: a category, and a rule on another virtual tag
            "accountId": "e6ad4c08-9ecd-4592-be61-7a13ad456259",
            "name": "Org/Department",
            "category": "Project",
            "id": "b11c9be2-b7a0-4209-a00e-44ac2ccce0f7",
            "rules": [
                {
                    "to": "TLV",
                    "filters": {
                        "costCenter": "Virtual Tags",
                        "key": "cc7e8b30-b141-496b-82b5-ddd4d535c79d",
                        "operator": "oneOf",
                        "value": ["x"],
                    },
                }
            ],
        },
    ],
}
METADATA_DOC = {
    "requestId": "ff8bef06-a211-49aa-b169-cbc8e240b1d7",
    "metadata": {
        "App Team": {
            "groups": ["d704e672-b33c-4fda-b4fc-bde7a8774de4"],
            "customMetadata": {"owner": "Dave"},
            "endpoints": ["770e4021-08f3-48d9-bdc1-ae9a8fd07cea"],
        },
        "Data Team": {
            "groups": ["f9e4a3f1-b8e4-4ff6-8307-e414dfc69ddb"],
            "customMetadata": {"owner": "Dan"},
            "endpoints": ["4f806937-6f5b-478e-a81a-f4b2ece14bb1"],
        },
        "DevOps Team": {"groups": ["4b6f659e-6a7a-4dc4-975c-30a641f0a42b"], "customMetadata": {"owner": "Sam"}},
    },
}
SCANS_DOC = {
    "requestId": "16514d04-2702-4374-9609-23f7f952ac4a",
    "scans": [
        {
            "scanId": "5dc3714f-e9dc-4a44-9ee0-dd422405af9d",
            "scanName": "VM - Rightsizing",
            "scanLastRunTime": 1712448000000,
            "scanMetadata": {"type": "rightsizing", "costCenter": "GCP", "analysisDays": 3},
        },
        {  # the other snapshot: no scanLastRunTime, no analysisDays
            "scanId": "1cb4c4b8-cd51-4eb6-bfa8-35dc24712d86",
            "scanName": "EC2 - Rightsizing",
            "scanMetadata": {"type": "rightsizing", "costCenter": "AWS"},
        },
    ],
}
ENDPOINTS_DOC = {
    "endpoints": [
        {
            "type": "email",
            "name": "example@finout.io",
            "configuration": {"to": "example@finout.io"},
            "createdBy": "example",
            "createdAt": "Thu Dec 28 2023 14:09:57 GMT+0000 (Greenwich Mean Time)",
            "id": "7fecf9fb-4f36-4931-8d02-9cc53bb26af3",
        },
        {
            "type": "slack",
            "name": "Demo-Finout",
            "configuration": {"to": "https://hooks.slack.com/services/T019/B032/qocRy4bgd4dJ"},
            "createdBy": "Demo-Finout",
            "createdAt": "Sun Feb 26 2023 14:33:35 GMT+0000 (Greenwich Mean Time)",
            "id": "4f806937-6f5b-478e-a81a-f4b2ece14bb1",
        },
        {
            "type": "msteams",
            "name": "BI Group/DevTeam",
            "createdBy": "Finout",
            "createdAt": "Wed Nov 13 2024 17:44:50 GMT+0000 (Greenwich Mean Time)",
            "id": "a4a41dfc-23b3-4d9d-8f17-6e45cc34e8f8",
        },
        {  # seed 000: an e-mail endpoint whose configuration is empty (obfuscated address)
            "type": "email",
            "name": "[email protected]",
            "configuration": {},
            "createdBy": "example",
            "createdAt": "Thu Dec 28 2023 14:09:57 GMT+0000 (Greenwich Mean Time)",
            "id": "8fecf9fb-4f36-4931-8d02-9cc53bb26af3",
        },
    ],
    "requestId": "3b4c8ee0-9d97-4042-8265-ce837a87469d",
}
ENDPOINT_CREATED_DOC = {  # seed 000 (the intercom article)
    "endpoint": {
        "accountId": "e6ad4c08-9ecd-4592-be61-7a13ad456259",
        "createdBy": "[email protected]",
        "type": "email",
        "name": "demo",
        "configuration": {},
        "createdAt": "Tue Jul 23 2024 13:19:59 GMT+0000 (Greenwich Mean Time)",
        "updatedAt": "Tue Jul 23 2024 13:19:59 GMT+0000 (Greenwich Mean Time)",
        "id": "b1da19ec-1bbc-4251-993a-73567b71d88d",
    },
    "requestId": "4839ad2b-97b9-4dbb-a959-bb78f13b7463",
}
COSTS_SEEN = {  # finout-api.md "Views and costs" (three public clients agree)
    "data": [
        {"name": "Total", "data": [{"time": 1717200000000, "cost": 123.45}]},
        {"name": "AmazonEC2", "data": [{"time": 1717200000000, "cost": 100.0}]},
    ],
    "requestId": "r-1",
}
RECOMMENDATIONS_SEEN = {
    "scanName": "EC2 - Rightsizing",
    "scanLastRunTime": 1712448000000,
    "scanTotalCost": "1200.5",
    "scanTotalWaste": 300,
    "scanYearlyPotentialSavings": 3600,
    "scanMetadata": {"type": "rightsizing", "costCenter": "AWS", "analysisDays": "14"},
    "data": [
        {
            "group": "Total",
            "groupTotalCost": 1200.5,
            "groupTotalWaste": 300,
            "groupYearlyPotentialSavings": 3600,
            "resources": [
                {"resourceId": "i-0abc", "resourceTotalCost": "1.96721311475231", "resourceTotalWaste": 1},
                {"resourceMetadata": {"accountName": "prod"}, "resourceTotalCost": 5},  # no resourceId
            ],
        }
    ],
    "requestId": "r-rec",
}


async def test_documented_examples_are_read() -> None:
    bodies = {
        "/v1/view": VIEWS_DOC,
        "/v1/megabill/query-language/keys": KEYS_DOC,
        "/v1/virtual-tags": TAGS_DOC,
        "/v1/virtual-tags/vt/metadata": METADATA_DOC,
        "/v1/cost-guard/scans": SCANS_DOC,
        "/v1/endpoints": ENDPOINTS_DOC,
    }
    async with client_for(lambda r: httpx.Response(200, json=bodies[r.url.path])) as client:
        views = await client.list_views()
        keys = await client.list_keys()
        tags = await client.list_virtual_tags()
        metadata = await client.get_virtual_tag_metadata("vt")
        scans = await client.list_scans()
        endpoints = await client.list_endpoints()
    assert [v.name for v in views.data] == ["Cost Ratio - Weightings by Group Name", "K8s by App_Component"]
    assert [k.key for k in keys.keys] == ["deployment", "f_usage_type", "run_name", "customCost_QmFtYmEbabababoi"]
    first, second, older = tags.virtual_tags
    assert first.rules[0].timeframe is not None and first.rules[0].timeframe.bounds_ms() == (
        1756166400000,
        1756166400100,
    )
    assert isinstance(second.rules[0].to, TagReference) and older.category == "Project"
    assert metadata.metadata["DevOps Team"].endpoints == [] and metadata.metadata["App Team"].endpoint_ids == [
        "770e4021-08f3-48d9-bdc1-ae9a8fd07cea"
    ]
    assert scans.scans[0].scan_last_run_time == 1712448000000 and scans.scans[1].scan_last_run_time is None
    assert scans.scans[1].scan_metadata.analysis_days is None
    by_id = {e.id: e for e in endpoints.endpoints}
    assert by_id["7fecf9fb-4f36-4931-8d02-9cc53bb26af3"].target == "example@finout.io"
    assert by_id["a4a41dfc-23b3-4d9d-8f17-6e45cc34e8f8"].target is None  # msteams: no configuration
    assert by_id["8fecf9fb-4f36-4931-8d02-9cc53bb26af3"].target is None  # shown empty, not invented


async def test_old_keys_envelope_and_seen_shapes_are_read() -> None:
    bodies = {
        "/v1/megabill/query-language/keys": KEYS_OLD_ENVELOPE,
        "/v1/cost/query-by-view": COSTS_SEEN,
        "/v1/cost-guard/scans-recommendations": RECOMMENDATIONS_SEEN,
        "/v1/endpoints": ENDPOINT_CREATED_DOC,
    }
    from finout_mcp.api.models import EndpointCreate, RecommendationsRequest

    async with client_for(lambda r: httpx.Response(200, json=bodies[r.url.path])) as client:
        keys = await client.list_keys()
        costs = await client.query_costs("v")
        recs = await client.get_scan_recommendations(RecommendationsRequest(scan_id="s"))
        created = await client.create_endpoint(EndpointCreate.of("email", "demo", "a@b.example"))
    assert keys.keys[0].display_name == "Account Owner Id"
    assert costs.total is not None and costs.total.data[0].amount == 123.45
    assert recs.scan_total_cost == 1200.5 and recs.scan_metadata.analysis_days == 14
    assert [r.resource_id for r in recs.data[0].resources] == ["i-0abc", None]
    assert created.id == "b1da19ec-1bbc-4251-993a-73567b71d88d" and created.target is None


# ----------------------------------------------------------------------------- documented alternatives


@pytest.mark.parametrize(
    "body",
    [
        {"values": ["prod-eu", "prod-us"]},
        {"data": {"values": ["prod-eu", "prod-us"]}, "requestId": "r"},  # the v2 shape
        {"values": [{"value": "prod-eu"}, {"value": "prod-us"}]},
        {"values": [{"name": "prod-eu"}, {"name": "prod-us"}]},
        {"data": {"values": [{"value": "prod-eu"}, "prod-us"]}},
    ],
    ids=["strings", "data.values", "value-objects", "name-objects", "mixed-under-data"],
)
async def test_values_in_every_documented_shape(body: dict[str, Any]) -> None:
    async with client_for(answering(body)) as client:
        values = await client.list_values("AWS", "aws_account_name")
    assert values.values == ["prod-eu", "prod-us"]


@pytest.mark.parametrize(
    ("path", "body", "read"),
    [
        ("view", {"data": VIEWS_DOC["data"]}, lambda c: c.list_views()),
        ("keys", {"data": {"keys": KEYS_DOC["keys"]}}, lambda c: c.list_keys()),
        ("tags", {"data": {"virtualTags": TAGS_DOC["virtualTags"]}}, lambda c: c.list_virtual_tags()),
        ("metadata", {"data": {"metadata": METADATA_DOC["metadata"]}}, lambda c: c.get_virtual_tag_metadata("vt")),
        ("scans", {"data": {"scans": SCANS_DOC["scans"]}}, lambda c: c.list_scans()),
        ("endpoints", {"data": {"endpoints": ENDPOINTS_DOC["endpoints"]}}, lambda c: c.list_endpoints()),
    ],
)
async def test_main_field_under_data_is_accepted(
    path: str, body: Any, read: Callable[[FinoutClient], Any]
) -> None:
    async with client_for(answering(body)) as client:
        result = await read(client)
    main = next(v for v in result.model_dump().values() if isinstance(v, list | dict) and v)
    assert main, path


async def test_widened_types() -> None:
    tag = {
        "id": "vt-9",
        "name": "BU",
        "defaultValue": {"key": "vt-1", "costCenter": "Virtual Tags"},
        "rules": [{"to": "x", "filters": {"costCenter": "AWS", "key": "k", "operator": "exists"}}],
    }
    scans = {
        "scans": [
            {"scanId": 1, "scanName": "a", "scanLastRunTime": "2024-04-07T00:00:00Z"},
            {"scanId": "b", "scanName": "b", "scanLastRunTime": "Sun Apr 07 2024 00:00:00 GMT+0000 (UTC)"},
            {"scanId": "c", "scanName": "c", "scanLastRunTime": "1712448000000"},
            {"scanId": "d", "scanName": "d", "scanLastRunTime": 1712448000},  # seconds
        ],
        "requestId": 42,
    }
    costs = {"data": [{"name": "Total", "data": [{"time": "2024-06-01", "cost": "1.5"}]}]}
    endpoints = {
        "endpoints": [
            {"id": "e1", "type": "email", "name": "ops", "configuration": {}, "to": "ops@acme.example"},
            {"id": "e2", "type": "slack", "name": "s", "to": "https://hooks.slack.com/services/T/B/zz99"},
        ]
    }
    metadata = {"metadata": {"A": {"endpoints": [{"endpoint": "e1"}, "e2"]}}}
    bodies = {
        "/v1/virtual-tags/vt-9": tag,
        "/v1/cost-guard/scans": scans,
        "/v1/cost/query-by-view": costs,
        "/v1/endpoints": endpoints,
        "/v1/virtual-tags/vt-9/metadata": metadata,
    }
    async with client_for(lambda r: httpx.Response(200, json=bodies[r.url.path])) as client:
        got = await client.get_virtual_tag("vt-9")
        scan_list = await client.list_scans()
        series = await client.query_costs("v")
        eps = await client.list_endpoints()
        md = await client.get_virtual_tag_metadata("vt-9")
    assert isinstance(got.default_value, TagReference) and got.default_value.key == "vt-1"
    assert got.write_body().wire()["defaultValue"] == {"key": "vt-1", "costCenter": "Virtual Tags"}
    assert {s.scan_last_run_time for s in scan_list.scans} == {1712448000000}
    assert scan_list.scans[0].scan_id == "1" and scan_list.request_id == "42"
    assert series.data[0].data[0].time == 1717200000000 and series.data[0].data[0].amount == 1.5
    assert [e.target for e in eps.endpoints] == ["ops@acme.example", "https://hooks.slack.com/services/T/B/zz99"]
    assert md.metadata["A"].endpoint_ids == ["e1", "e2"]
    assert md.metadata["A"].wire() == {"endpoints": [{"endpoint": "e1"}, "e2"]}  # sent back as read


def test_parse_moment_forms() -> None:
    assert parse_moment(1712448000000) == parse_moment("2024-04-07") == 1712448000000
    assert parse_moment("Sun Apr 07 2024 02:00:00 GMT+0200 (Central European Summer Time)") == 1712448000000
    assert parse_moment(None) is None
    with pytest.raises(ValueError):
        parse_moment("last tuesday")


# ----------------------------------------------------------------------------- strict recognition


@pytest.mark.parametrize(
    ("body", "read", "operation", "field"),
    [
        ({"views": VIEWS_DOC["data"]}, lambda c: c.list_views(), "GET /view", "data"),
        ({"requestId": "r"}, lambda c: c.query_costs("v"), "POST /cost/query-by-view", "data"),
        ({"data": {"items": []}}, lambda c: c.list_keys(), "GET /megabill/query-language/keys", "keys"),
        (
            {"data": ["a", "b"]},
            lambda c: c.list_values("AWS", "k"),
            "GET /megabill/query-language/values/AWS/k",
            "values",
        ),
        (
            {"values": [{"label": "a"}]},
            lambda c: c.list_values("AWS", "k"),
            "GET /megabill/query-language/values/AWS/k",
            "values",
        ),
        ({"tags": TAGS_DOC["virtualTags"]}, lambda c: c.list_virtual_tags(), "GET /virtual-tags", "virtualTags"),
        ({}, lambda c: c.list_virtual_tags(), "GET /virtual-tags", "virtualTags"),
        ({"virtualTags": {"a": 1}}, lambda c: c.list_virtual_tags(), "GET /virtual-tags", "virtualTags"),
        (
            {"requestId": "r"},
            lambda c: c.get_virtual_tag_metadata("vt"),
            "GET /virtual-tags/vt/metadata",
            "metadata",
        ),
        (
            {"metadata": ["a"]},
            lambda c: c.get_virtual_tag_metadata("vt"),
            "GET /virtual-tags/vt/metadata",
            "metadata",
        ),
        ({"results": []}, lambda c: c.list_scans(), "GET /cost-guard/scans", "scans"),
        ({"name": "x"}, lambda c: c.get_virtual_tag("vt"), "GET /virtual-tags/vt", "id"),
        (ENDPOINTS_DOC["endpoints"], lambda c: c.list_endpoints(), "GET /endpoints", "endpoints"),
    ],
    ids=[
        "views-renamed",
        "costs-missing",
        "keys-other-name",
        "values-list-under-data",
        "values-unknown-objects",
        "tags-renamed",
        "tags-empty-object",
        "tags-not-a-list",
        "metadata-missing",
        "metadata-a-list",
        "scans-renamed",
        "tag-without-id",
        "endpoints-bare-list",
    ],
)
async def test_an_unexpected_shape_raises_naming_operation_and_field(
    body: Any, read: Callable[[FinoutClient], Any], operation: str, field: str
) -> None:
    async with client_for(answering(body)) as client:
        with pytest.raises(MalformedResponseError) as info:
            await read(client)
    err = info.value
    assert err.field is not None and err.field.split(".")[0] == field
    assert operation in str(err) and field in str(err)
    assert "does not recognise" in str(err) and "doctor" in str(err)
    assert err.shape is not None


async def test_an_unreadable_time_fails_the_response_naming_the_field() -> None:
    body = {"scans": [{"scanId": "a", "scanName": "a", "scanLastRunTime": "last tuesday"}]}
    async with client_for(answering(body)) as client:
        with pytest.raises(MalformedResponseError) as info:
            await client.list_scans()
    assert info.value.field == "scans.0.scanLastRunTime" and "GET /cost-guard/scans" in str(info.value)


async def test_a_created_endpoint_without_an_id_is_not_a_success() -> None:
    from finout_mcp.api.models import EndpointCreate

    async with client_for(answering({"endpoint": {"type": "email", "name": "x"}, "requestId": "r"})) as client:
        with pytest.raises(MalformedResponseError) as info:
            await client.create_endpoint(EndpointCreate.of("email", "x", "x@acme.example"))
    assert info.value.outcome_unknown and "endpoint.id" in (info.value.field or "")


async def test_recommendations_without_data_raise() -> None:
    from finout_mcp.api.models import RecommendationsRequest

    async with client_for(answering({"scanName": "x", "requestId": "r"})) as client:
        with pytest.raises(MalformedResponseError) as info:
            await client.get_scan_recommendations(RecommendationsRequest(scan_id="s"))
    assert info.value.field == "data" and "POST /cost-guard/scans-recommendations" in str(info.value)


async def test_the_shape_sketch_holds_no_value() -> None:
    body = {"hooks": [{"to": "https://hooks.slack.com/services/T/B/" + SECRET}], "secret": SECRET}
    async with client_for(answering(body)) as client:
        with pytest.raises(MalformedResponseError) as info:
            await client.list_endpoints()
    assert info.value.shape == "{hooks: list[1] of object{to}, secret: str}"
    assert SECRET not in str(info.value) and "hooks.slack.com" not in (info.value.shape or "")


# ----------------------------------------------------------------------------- the metadata round trip


class FakeFinout:
    """Just enough of Finout for a metadata write: tags, endpoints, metadata GET and PUT.

    ``reads_put_as``: ``"documented"`` stores the body as the bare map; ``"wrapped"`` is an API
    that files the body under a value named ``metadata``; ``"ignored"`` answers 200 and keeps
    nothing. ``get_metadata`` overrides the GET answer (an unrecognised shape)."""

    def __init__(self, reads_put_as: str = "documented", get_metadata: Any = None) -> None:
        self.metadata: dict[str, Any] = json.loads(json.dumps(METADATA_DOC["metadata"]))
        self.reads_put_as = reads_put_as
        self.get_metadata = get_metadata
        self.puts: list[Any] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/virtual-tags":
            return httpx.Response(200, json={"virtualTags": [{"id": "vt", "name": "Teams", "rules": []}]})
        if path == "/v1/virtual-tags/vt":  # writes read the tag by id just before writing
            return httpx.Response(200, json={"id": "vt", "name": "Teams", "rules": []})
        if path == "/v1/megabill/query-language/keys":
            return httpx.Response(200, json=KEYS_DOC)
        if path == "/v1/endpoints":
            return httpx.Response(200, json=ENDPOINTS_DOC)
        if path == "/v1/virtual-tags/vt/metadata" and request.method == "GET":
            body = self.get_metadata if self.get_metadata is not None else {"metadata": self.metadata}
            return httpx.Response(200, json=body)
        if path == "/v1/virtual-tags/vt/metadata" and request.method == "PUT":
            body = json.loads(request.content)
            self.puts.append(body)
            if self.reads_put_as == "documented":
                self.metadata = body
            elif self.reads_put_as == "wrapped":
                self.metadata = {"metadata": body}
            return httpx.Response(200, json={"requestId": "r-put"})
        return httpx.Response(404, json={"message": "not found"})


def writer_for(fake: FakeFinout, tmp_path: Path) -> Writer:
    client = client_for(fake)
    return Writer(client, Catalog(client), ChangeLog(tmp_path / "state"), actor="tests")


async def test_merge_sends_the_bare_map_and_reads_it_back(tmp_path: Path) -> None:
    fake = FakeFinout()
    writer = writer_for(fake, tmp_path)
    incoming = {"Data Team": ValueMetadata.model_validate({"customMetadata": {"budget": "9000"}})}
    result = await writer.update_metadata("Teams", incoming, "merge", dry_run=False)
    assert result.status == "updated" and result.change_id
    sent = fake.puts[0]
    assert "metadata" not in sent and set(sent) == {"App Team", "Data Team", "DevOps Team"}
    assert sent["Data Team"]["customMetadata"] == {"owner": "Dan", "budget": "9000"}
    # untouched values go back exactly as read: DevOps Team had no `endpoints`, and still has none
    assert sent["DevOps Team"] == METADATA_DOC["metadata"]["DevOps Team"]
    assert sent["App Team"] == METADATA_DOC["metadata"]["App Team"]
    assert any("Read back" in n for n in result.notes)


async def test_read_back_catches_an_api_that_read_the_body_otherwise(tmp_path: Path) -> None:
    writer = writer_for(FakeFinout(reads_put_as="wrapped"), tmp_path)
    incoming = {"Data Team": ValueMetadata.model_validate({"groups": ["g-2"]})}
    with pytest.raises(WriteVerificationError) as info:
        await writer.update_metadata("Teams", incoming, "merge", dry_run=False)
    message = str(info.value)
    assert "a value named `metadata` appeared" in message and "values that were written are missing" in message
    assert f"undo_change({info.value.change_id!r})" in message
    # the change is recorded, so the undo it names exists
    assert writer.store.get(info.value.change_id).operation == "update_virtual_tag_metadata"


async def test_read_back_catches_a_write_that_did_not_take(tmp_path: Path) -> None:
    writer = writer_for(FakeFinout(reads_put_as="ignored"), tmp_path)
    incoming = {"Data Team": ValueMetadata.model_validate({"groups": ["g-2"]})}
    with pytest.raises(WriteVerificationError) as info:
        await writer.update_metadata("Teams", incoming, "merge", dry_run=False)
    assert "did not take effect" in str(info.value) and "with 200" in str(info.value)


async def test_merge_refuses_onto_an_unrecognised_read(tmp_path: Path) -> None:
    fake = FakeFinout(get_metadata={"data": [{"value": "App Team"}], "requestId": "r"})
    writer = writer_for(fake, tmp_path)
    incoming = {"Data Team": ValueMetadata.model_validate({"groups": ["g-2"]})}
    with pytest.raises(InputError) as info:
        await writer.update_metadata("Teams", incoming, "merge", dry_run=False)
    assert "Nothing was written" in str(info.value) and "mode='replace'" in str(info.value)
    assert fake.puts == []


async def test_replace_writes_over_an_unrecognised_read_and_says_the_read_back_failed(tmp_path: Path) -> None:
    fake = FakeFinout(get_metadata={"requestId": "r"})  # e.g. a tag without metadata answered bare
    writer = writer_for(fake, tmp_path)
    incoming = {"Data Team": ValueMetadata.model_validate({"groups": ["g-2"]})}
    with pytest.raises(WriteVerificationError) as info:  # the read-back is unrecognised too: said, not assumed
        await writer.update_metadata("Teams", incoming, "replace", dry_run=False)
    assert fake.puts == [{"Data Team": {"groups": ["g-2"]}}]
    assert "could not be read back" in str(info.value)


async def test_new_endpoint_references_follow_the_accounts_shape(tmp_path: Path) -> None:
    fake = FakeFinout()
    fake.metadata["App Team"]["endpoints"] = [{"endpoint": "770e4021-08f3-48d9-bdc1-ae9a8fd07cea"}]
    writer = writer_for(fake, tmp_path)
    incoming = {"Data Team": ValueMetadata.model_validate({"endpoints": ["7fecf9fb-4f36-4931-8d02-9cc53bb26af3"]})}
    await writer.update_metadata("Teams", incoming, "merge", dry_run=False)
    assert fake.puts[0]["Data Team"]["endpoints"] == [
        {"endpoint": "4f806937-6f5b-478e-a81a-f4b2ece14bb1"},
        {"endpoint": "7fecf9fb-4f36-4931-8d02-9cc53bb26af3"},
    ]


# ----------------------------------------------------------------------------- end to end on the sandbox


async def test_sandbox_metadata_round_trip_keeps_absent_fields(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        env = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Environment")
        before = json.loads(json.dumps(sb.account.metadata[env["id"]]))
        out = await call(
            client,
            "update_virtual_tag_metadata",
            {"tag": "Environment", "values": {"production": {"customMetadata": {"budget": "100"}}}},
        )
        assert out["status"] == "updated" and any("Read back" in n for n in out["notes"])
        after = sb.account.metadata[env["id"]]
        assert after["staging"] == before["staging"] and "endpoints" not in after["staging"]
        assert after["production"]["customMetadata"] == {**before["production"]["customMetadata"], "budget": "100"}
        await call(client, "undo_change", {"change_id": out["change_id"]})
        assert sb.account.metadata[env["id"]] == before


async def test_sandbox_email_endpoint_with_top_level_to(tmp_path: Path) -> None:
    """The duplicate check compares with the target wherever Finout put it (issue 10's bug)."""
    async with demo(tmp_path) as (client, _sb):
        listed = await call(client, "list_endpoints", {"type": "email"})
        leads = next(e for e in listed["endpoints"] if e["name"] == "Payments leads")
        assert leads["to"] == "payments-leads@acme.example"
        same = await call(
            client,
            "create_endpoint",
            {"type": "email", "name": "Payments leads", "to": "payments-leads@acme.example"},
        )
        assert same["status"] == "unchanged"
        other = await call_error(
            client, "create_endpoint", {"type": "email", "name": "Payments leads", "to": "x@acme.example"}
        )
        assert "another target" in other


async def test_sandbox_tag_update_keeps_category_and_object_default(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        bu = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Business Unit")
        listed = await call(client, "list_virtual_tags", {})
        item = next(t for t in listed["tags"] if t["name"] == "Business Unit")
        assert item["default_value"] == bu["defaultValue"]  # {"key": <Team's id>, "costCenter": "Virtual Tags"}
        default = dict(bu["defaultValue"])
        await call(client, "update_virtual_tag", {"tag": "Business Unit", "name": "Business Units"})
        # PUT replaces the tag: what was read and not changed went back as it was
        assert bu["name"] == "Business Units" and bu["category"] == "General" and bu["defaultValue"] == default
        env = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Environment")
        open_ended = [r["timeframe"] for r in env["rules"] if "timeframe" in r and "to" not in r["timeframe"]]
        await call(client, "update_virtual_tag", {"tag": "Environment", "name": "Environments"})
        assert open_ended and [r["timeframe"] for r in env["rules"] if "timeframe" in r][-1] == open_ended[0]


# ----------------------------------------------------------------------------- 404 advice in the tools


def test_tool_advice_names_the_list_tool_for_an_id_but_the_setting_for_a_base_url() -> None:
    from finout_mcp.api.errors import NotFoundError
    from finout_mcp.server.errors import describe

    one_id = NotFoundError("Virtual tag not found", status=404, method="GET", path="/virtual-tags/abc")
    one_id.subject, one_id.ident = "virtual tag", "abc"
    assert "list_virtual_tags" in describe(one_id)
    everywhere = NotFoundError("Not Found", status=404, method="POST", path="/cost/query-by-view")
    everywhere.subject, everywhere.ident, everywhere.base_url_wrong = "view", "v-1", True
    everywhere.hint = "Every Finout path answers 404 at https://x, so the base URL is wrong: set FINOUT_API_URL."
    text = describe(everywhere)
    assert "FINOUT_API_URL" in text and "list_views" not in text
