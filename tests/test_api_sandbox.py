"""Every FinoutClient method against the sandbox simulator (which never shares our models)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from finout_mcp.api.client import FinoutClient
from finout_mcp.api.errors import (
    FinoutAPIStatusError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    ServerError,
    TransportError,
)
from finout_mcp.api.models import (
    EndpointConfiguration,
    EndpointCreate,
    GroupBy,
    RecommendationsRequest,
    ValueMetadata,
    VirtualTagRule,
    VirtualTagWrite,
)
from finout_mcp.config import Settings
from finout_mcp.sandbox import Fault, Sandbox

DAY_MS = 86_400_000


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(seed=7)


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[FinoutClient]:
    async def no_sleep(_: float) -> None:
        return None

    settings = Settings(demo=True, api_url="http://sandbox/v1")
    async with FinoutClient(settings, transport=httpx.ASGITransport(app=sandbox.app), sleep=no_sleep) as c:
        yield c


def _utc_midnight_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


async def test_views_and_costs(client: FinoutClient, sandbox: Sandbox) -> None:
    views = await client.list_views()
    assert views.data and views.request_id
    saved = await client.query_costs(views.data[0].id)
    assert saved.total is not None and saved.total.data
    start = _utc_midnight_ms(sandbox.today - dt.timedelta(days=7))
    end = _utc_midnight_ms(sandbox.today) - 1
    ranged = await client.query_costs(views.data[0].id, start_ms=start, end_ms=end, cost_type="amortizedCost")
    assert ranged.total is not None
    assert all(start <= p.time <= end for p in ranged.total.data)


async def test_more_than_90_days_is_refused(client: FinoutClient, sandbox: Sandbox) -> None:
    views = await client.list_views()
    end = _utc_midnight_ms(sandbox.today) - 1
    with pytest.raises(FinoutAPIStatusError) as info:
        await client.query_costs(views.data[0].id, start_ms=end - 120 * DAY_MS, end_ms=end)
    assert isinstance(info.value, InvalidRequestError) and info.value.request_id


async def test_keys_and_values_of_every_awkward_key(client: FinoutClient, sandbox: Sandbox) -> None:
    keys = await client.list_keys()
    assert keys.keys
    awkward = [k for k in keys.keys if " " in k.cost_center or "/" in k.key or "=" in k.key]
    assert awkward, "the demo account should have keys that need URL-encoding"
    for key in awkward:
        values = await client.list_values(key.cost_center, key.key)
        assert values.values, key
    assert all(r.status == 200 for r in sandbox.request_log)


async def test_unknown_key_is_not_found(client: FinoutClient) -> None:
    with pytest.raises(NotFoundError) as info:
        await client.list_values("AWS", "../../virtual-tags")
    assert info.value.request_id and "No MegaBill key has the id 'AWS/../../virtual-tags'" in str(info.value)


async def test_virtual_tag_lifecycle(client: FinoutClient, sandbox: Sandbox) -> None:
    tags = await client.list_virtual_tags()
    original = await client.get_virtual_tag(tags.virtual_tags[0].id)
    # clone straight from a GET: displayName and server fields must be stripped on the way out
    clone = VirtualTagWrite.model_validate({**original.model_dump(by_alias=True), "name": "Team (copy)"})
    created = await client.create_virtual_tag(clone)
    assert created.id != original.id and created.name == "Team (copy)"
    assert len(created.rules) == len(original.rules)

    rules = [
        VirtualTagRule(to="everything", filters={"costCenter": "AWS", "key": "service", "operator": "exists"})
    ]
    updated = await client.update_virtual_tag(created.id, VirtualTagWrite(name="Team v2", rules=rules))
    assert updated.name == "Team v2" and len(updated.rules) == 1

    ack = await client.set_virtual_tag_metadata(
        created.id, {"everything": ValueMetadata(custom_metadata={"owner": "me"})}
    )
    assert ack.status == 200
    assert (await client.get_virtual_tag_metadata(created.id)).metadata["everything"].custom_metadata == {
        "owner": "me"
    }

    await client.delete_virtual_tag(created.id)
    with pytest.raises(NotFoundError):
        await client.get_virtual_tag(created.id)
    assert created.id not in {t.id for t in (await client.list_virtual_tags()).virtual_tags}


async def test_invalid_tag_is_unprocessable(client: FinoutClient) -> None:
    bad = VirtualTagWrite(
        name="Bad",
        rules=[VirtualTagRule(to="x", filters={"costCenter": "AWS", "key": "service", "operator": "bogus"})],
    )
    with pytest.raises(InvalidRequestError) as info:
        await client.create_virtual_tag(bad)
    assert info.value.status in (400, 422)


async def test_scans_and_recommendations(client: FinoutClient) -> None:
    scans = await client.list_scans()
    assert scans.scans
    scan = scans.scans[0]
    total = await client.get_scan_recommendations(RecommendationsRequest(scan_id=scan.scan_id))
    assert total.data and total.data[0].group == "Total"
    grouped = await client.get_scan_recommendations(
        RecommendationsRequest(scan_id=scan.scan_id, group_by=GroupBy(cost_center="AWS", key="aws_account_name"))
    )
    assert grouped.data


async def test_endpoints(client: FinoutClient) -> None:
    before = await client.list_endpoints()
    assert before.endpoints
    created = await client.create_endpoint(
        EndpointCreate(type="email", name="Sandbox test", configuration=EndpointConfiguration(to="t@example.com"))
    )
    assert created.id and created.type == "email"
    after = await client.list_endpoints()
    assert created.id in {e.id for e in after.endpoints}


async def test_thirty_concurrent_calls_stay_within_five(client: FinoutClient, sandbox: Sandbox) -> None:
    sandbox.faults.latency_ms = 10
    async with anyio.create_task_group() as tg:
        for _ in range(30):
            tg.start_soon(client.list_views)
    assert sandbox.stats.max_in_flight <= 5
    assert client.stats.max_in_flight <= 5
    assert not [r for r in sandbox.request_log if r.status == 429]


async def test_retries_scripted_faults(client: FinoutClient, sandbox: Sandbox) -> None:
    sandbox.faults.script("GET /v1/view", [Fault(status=429, retry_after=1), Fault(status=503)])
    views = await client.list_views()
    assert views.data and client.stats.retries == 2
    assert [r.status for r in sandbox.request_log] == [429, 503, 200]


async def test_create_not_resent_after_dropped_connection(client: FinoutClient, sandbox: Sandbox) -> None:
    sandbox.faults.script("POST /v1/virtual-tags", [Fault(drop=True)])
    with pytest.raises(TransportError) as info:
        await client.create_virtual_tag(VirtualTagWrite(name="Once", rules=[], default_value="u"))
    assert info.value.outcome_unknown and "list the virtual tags" in str(info.value)
    assert len([r for r in sandbox.request_log if r.method == "POST"]) == 1


async def test_create_resent_after_429(client: FinoutClient, sandbox: Sandbox) -> None:
    sandbox.faults.script("POST /v1/endpoints", [Fault(status=429, retry_after=0.5)])
    created = await client.create_endpoint(
        EndpointCreate(type="email", name="Retry", configuration=EndpointConfiguration(to="r@example.com"))
    )
    assert created.id
    assert [r.status for r in sandbox.request_log if r.method == "POST"] == [429, 200]


@pytest.mark.parametrize("body", ["html", "empty", "truncated"])
async def test_broken_bodies(client: FinoutClient, sandbox: Sandbox, body: str) -> None:
    sandbox.faults.script("GET /v1/virtual-tags", [Fault(body=body)])  # type: ignore[arg-type]
    with pytest.raises(MalformedResponseError) as info:
        await client.list_virtual_tags()
    assert info.value.status == 200 and "<" not in info.value.message


async def test_500_is_not_retried(client: FinoutClient, sandbox: Sandbox) -> None:
    sandbox.faults.script("GET /v1/cost-guard/scans", [Fault(status=500)])
    with pytest.raises(ServerError):
        await client.list_scans()
    assert len(sandbox.request_log) == 1
