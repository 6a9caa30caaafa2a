from __future__ import annotations

import random
import string

import anyio
import pytest

from finout_mcp.api.models import KeyList, MegabillKey, ScanList, ValueList, ViewList, VirtualTagList
from finout_mcp.services.catalog import Catalog
from finout_mcp.services.errors import InputError
from finout_mcp.services.search import (
    closest_names,
    fold,
    group_by_cost_center,
    search_keys,
    search_values,
)


class FakeApi:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls: dict[str, int] = {}
        self.delay = delay
        self.fail = False
        self.views = [
            {"id": "v-1", "name": "Costs by service"},
            {"id": "v-2", "name": "Kubernetes by namespace"},
            {"id": "v-3", "name": "Production accounts"},
        ]

    async def _hit(self, what: str) -> None:
        self.calls[what] = self.calls.get(what, 0) + 1
        await anyio.sleep(self.delay)
        if self.fail:
            raise RuntimeError(f"{what} failed")

    async def list_views(self) -> ViewList:
        await self._hit("views")
        return ViewList.model_validate({"data": self.views})

    async def list_keys(self) -> KeyList:
        await self._hit("keys")
        return KeyList.model_validate(
            {"keys": [{"costCenter": "AWS", "key": "aws_account_name", "displayName": "Account Name"}]}
        )

    async def list_values(self, cost_center: str, key: str) -> ValueList:
        await self._hit(f"values:{cost_center}:{key}")
        return ValueList.model_validate({"values": [f"{key}-a", f"{key}-b"]})

    async def list_virtual_tags(self) -> VirtualTagList:
        await self._hit("virtual_tags")
        return VirtualTagList.model_validate(
            {
                "virtualTags": [
                    {"id": "t-1", "name": "Team", "rules": []},
                    {"id": "t-2", "name": "Env", "rules": []},
                ]
            }
        )

    async def list_scans(self) -> ScanList:
        await self._hit("scans")
        return ScanList.model_validate(
            {"scans": [{"scanId": "s-1", "scanName": "EC2 - Idle", "scanMetadata": {"type": "idle"}}]}
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ----------------------------------------------------------------------------- cache


async def test_cache_hit_ttl_and_refresh() -> None:
    api, clock = FakeApi(), Clock()
    cat = Catalog(api, ttl_s=600, clock=clock)
    first = await cat.views()
    assert await cat.views() is first
    assert api.calls["views"] == 1
    clock.now += 599
    await cat.views()
    assert api.calls["views"] == 1
    clock.now += 2
    await cat.views()
    assert api.calls["views"] == 2
    await cat.views(refresh=True)
    assert api.calls["views"] == 3
    await cat.values("AWS", "k")
    await cat.values("AWS", "k")
    await cat.values("GCP", "k")
    assert api.calls["values:AWS:k"] == 1 and api.calls["values:GCP:k"] == 1


async def test_concurrent_fetches_coalesce() -> None:
    api = FakeApi(delay=0.05)
    cat = Catalog(api)
    results: list[object] = []

    async def one() -> None:
        results.append(await cat.keys())

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(one)
    assert api.calls["keys"] == 1
    assert len(results) == 20 and all(r is results[0] for r in results)


async def test_failure_propagates_to_waiters_and_is_not_cached() -> None:
    api = FakeApi(delay=0.05)
    api.fail = True
    cat = Catalog(api)
    errors: list[BaseException] = []

    async def one() -> None:
        try:
            await cat.scans()
        except RuntimeError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(one)
    assert len(errors) == 5 and api.calls["scans"] == 1
    api.fail = False
    assert [s.scan_id for s in await cat.scans()] == ["s-1"]
    assert api.calls["scans"] == 2


async def test_cancelled_leader_lets_waiter_retry() -> None:
    api = FakeApi(delay=0.1)
    cat = Catalog(api)
    got: list[int] = []

    async def waiter() -> None:
        got.append(len(await cat.views()))

    async with anyio.create_task_group() as tg, anyio.create_task_group() as inner:
        inner.start_soon(cat.views)  # the leader
        await anyio.sleep(0.01)
        tg.start_soon(waiter)  # joins the leader's flight
        await anyio.sleep(0.01)
        inner.cancel_scope.cancel()  # leader cancelled: the waiter must fetch itself
    assert got == [3]
    assert api.calls["views"] == 2


async def test_invalidate_virtual_tags_drops_keys_too() -> None:
    api = FakeApi()
    cat = Catalog(api)
    await cat.keys()
    await cat.virtual_tags()
    await cat.views()
    await cat.values("Virtual Tags", "t-1")
    await cat.values("AWS", "k")
    cat.invalidate("virtual_tags")
    await cat.keys()
    await cat.virtual_tags()
    await cat.views()
    await cat.values("Virtual Tags", "t-1")
    await cat.values("AWS", "k")
    assert api.calls["keys"] == 2 and api.calls["virtual_tags"] == 2 and api.calls["views"] == 1
    assert api.calls["values:Virtual Tags:t-1"] == 2 and api.calls["values:AWS:k"] == 1
    cat.invalidate()
    await cat.views()
    assert api.calls["views"] == 2
    with pytest.raises(ValueError):
        cat.invalidate("nonsense")


async def test_invalidate_during_fetch_does_not_cache_stale() -> None:
    api = FakeApi(delay=0.05)
    cat = Catalog(api)
    async with anyio.create_task_group() as tg:
        tg.start_soon(cat.virtual_tags)
        await anyio.sleep(0.01)
        cat.invalidate("virtual_tags")
    await cat.virtual_tags()
    assert api.calls["virtual_tags"] == 2


# ----------------------------------------------------------------------------- resolve


async def test_resolve_view() -> None:
    api = FakeApi()
    cat = Catalog(api)
    assert (await cat.resolve_view("v-2")).name == "Kubernetes by namespace"
    assert (await cat.resolve_view("Costs by service")).id == "v-1"
    assert (await cat.resolve_view("  costs BY service ")).id == "v-1"
    with pytest.raises(InputError) as ei:
        await cat.resolve_view("Cost by services")
    msg = str(ei.value)
    assert "«Costs by service»" in msg and "list_views" in msg
    assert api.calls["views"] == 2  # one refresh before giving up


async def test_resolve_ambiguous_case_insensitive_name() -> None:
    api = FakeApi()
    api.views.append({"id": "v-4", "name": "COSTS BY SERVICE"})
    cat = Catalog(api)
    assert (await cat.resolve_view("COSTS BY SERVICE")).id == "v-4"
    with pytest.raises(InputError, match="Pass the id"):
        await cat.resolve_view("costs by service")


async def test_resolve_tag_and_scan() -> None:
    cat = Catalog(FakeApi())
    assert (await cat.resolve_tag("team")).id == "t-1"
    assert (await cat.resolve_tag("t-2")).name == "Env"
    assert (await cat.resolve_scan("EC2 - Idle")).scan_id == "s-1"
    with pytest.raises(InputError, match="list_costguard_scans"):
        await cat.resolve_scan("nope")
    with pytest.raises(InputError, match="list_virtual_tags"):
        await cat.resolve_tag("")


def test_closest_names() -> None:
    names = ["Costs by service", "Kubernetes by namespace", "Production accounts"]
    assert closest_names("production", names)[0] == "Production accounts"
    assert closest_names("Kubernets by namespace", names)[0] == "Kubernetes by namespace"
    assert closest_names("zzzz", names) == []


# ----------------------------------------------------------------------------- search


KEYS = [
    MegabillKey(cost_center="AWS", key="aws_account_name", display_name="Account Name"),
    MegabillKey(cost_center="AWS", key="account", display_name="Account"),
    MegabillKey(cost_center="GCP", key="gcp_account_id", display_name="Account ID"),
    MegabillKey(cost_center="AWS", key="linked_account", display_name="Linked Account"),
    MegabillKey(cost_center="Kubernetes", key="pl_app", display_name="app"),
    MegabillKey(cost_center="AWS", key="acount_typo_key", display_name="Acount"),
    MegabillKey(cost_center="AWS", key="service", display_name="Service"),
]


def test_search_keys_tier_order() -> None:
    r = search_keys(KEYS, "account", cost_center=None, limit=10)
    labels = [k.key for k in r.matches]
    # exact, then prefix (sorted), then substring, then fuzzy
    assert labels[0] == "account"
    assert set(labels[1:3]) == {"aws_account_name", "gcp_account_id"}  # "account name" / "account id" prefixes
    assert labels[3] == "linked_account"
    assert labels[4] == "acount_typo_key"  # fuzzy: "acount" ≈ "account"
    assert r.total == 5 and not r.truncated


def test_search_keys_separator_folding_and_filter() -> None:
    r = search_keys(KEYS, "Account_Name", cost_center=None, limit=5)
    assert r.matches[0].key == "aws_account_name"
    r = search_keys(KEYS, "account", cost_center="gcp", limit=5)
    assert [k.key for k in r.matches] == ["gcp_account_id"]
    r = search_keys(KEYS, None, cost_center="aws", limit=2)
    assert r.total == 5 and r.truncated and len(r.matches) == 2
    r = search_keys(KEYS, "kubernetes", cost_center=None, limit=5)  # cost center text matches
    assert [k.key for k in r.matches] == ["pl_app"]


def test_search_truncated_total() -> None:
    vals = [f"prod-{i:03d}" for i in range(300)] + ["staging"]
    r = search_values(vals, "prod", limit=10)
    assert r.total == 300 and r.truncated and len(r.matches) == 10
    assert r.matches[0] == "prod-000"
    r = search_values(vals, None, limit=500)
    assert r.total == 301 and not r.truncated


def test_search_values_order() -> None:
    vals = ["xprod", "prod-eu", "prod", "Production", "prd", "other"]
    r = search_values(vals, "prod", limit=10)
    assert r.matches == ["prod", "prod-eu", "Production", "xprod", "prd"]
    assert search_values(vals, "zzzz", limit=10).matches == []


def test_index_reuse_and_mutation() -> None:
    vals = ["alpha", "beta"]
    assert search_values(vals, "gamma", limit=5).matches == []
    vals.append("gamma")  # a mutated list (length change) is re-indexed
    assert search_values(vals, "gamma", limit=5).matches == ["gamma"]


def test_group_by_cost_center() -> None:
    g = group_by_cost_center(KEYS)
    assert list(g) == ["AWS", "GCP", "Kubernetes"] and len(g["AWS"]) == 5


def test_fold() -> None:
    assert fold("  AWS_Account-Name ") == "aws account name"


# ----------------------------------------------------------------------------- speed


def _words(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(n)]


def test_very_common_search_text_is_counted_to_a_cap_and_says_so() -> None:
    values = [f"pod-{i:06d}-x" for i in range(12_000)] + [f"other-{i}" for i in range(100)]
    found = search_values(values, "pod", limit=10)
    assert len(found.matches) == 10 and found.truncated
    assert found.at_least and 10 < found.total <= 12_000  # a true lower bound
    few = search_values(values, "other-1", limit=10)
    assert not few.at_least and few.total == len([v for v in values if "other-1" in v])
