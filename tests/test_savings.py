"""summarize_savings: every scan at once, counted once, grouped, cached; and the scan list's savings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from finout_mcp.sandbox import Fault, Sandbox
from finout_mcp.sandbox.scans import Resource
from tests.support import call, call_error, demo


def by_scan(sb: Sandbox) -> dict[str, float]:
    return {s.name: sum(r.yearly_savings for r in s.resources) for s in sb.account.scans}


def counted_once(sb: Sandbox, group_of: Callable[[Resource], str]) -> dict[str, float]:
    """Per group: the savings of each distinct resource (largest finding), grouped by ``group_of``."""
    best: dict[str, tuple[float, str]] = {}
    for scan in sb.account.scans:
        for r in scan.resources:
            if r.resource_id not in best or r.yearly_savings > best[r.resource_id][0]:
                best[r.resource_id] = (r.yearly_savings, group_of(r))
    out: dict[str, float] = {}
    for value, group in best.values():
        out[group] = out.get(group, 0.0) + value
    return out


async def test_scan_totals_and_the_cached_scan_list(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        before = await call(client, "list_costguard_scans")
        assert all(s.get("yearly_potential_savings") is None for s in before["scans"])
        assert any("summarize_savings" in n for n in before["notes"])
        out = await call(client, "summarize_savings")
        sb.stats.reset()
        again = await call(client, "summarize_savings", {"top_n": 3})
        listed = await call(client, "list_costguard_scans")
        assert sb.stats.total_requests == 0  # both answered from the cache
    expected = by_scan(sb)
    assert {s["name"]: s["yearly_potential_savings"] for s in out["scans"]} == {
        n: round(v, 2) for n, v in expected.items()
    }
    assert [s["yearly_potential_savings"] for s in out["scans"]] == sorted(
        (round(v, 2) for v in expected.values()), reverse=True
    )
    counts = {s.name: len(s.resources) for s in sb.account.scans}
    assert {s["name"]: s["resource_count"] for s in out["scans"]} == counts
    assert again["yearly_potential_savings"] == out["yearly_potential_savings"]
    assert {s["name"]: s["yearly_potential_savings"] for s in listed["scans"]} == {
        n: round(v, 2) for n, v in expected.items()
    }


async def test_group_by_account(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        out = await call(client, "summarize_savings", {"group_by": "account", "top_n": 3})

    def account(r: Resource) -> str:
        md = r.metadata
        return str(md.get("accountName") or md.get("projectName") or "(no account)")

    expected = counted_once(sb, account)
    top = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert [(g["group"], g["yearly_potential_savings"]) for g in out["groups"]] == [
        (name, round(v, 2)) for name, v in top
    ]


async def test_group_by_a_key(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        out = await call(client, "summarize_savings", {"group_by": "region", "group_by_cost_center": "AWS"})
    expected = counted_once(sb, lambda r: r.attrs.get(("AWS", "region")) or "N/A")
    assert out["group_by"] == "AWS.Region"
    assert {g["group"]: g["yearly_potential_savings"] for g in out["groups"]} == {
        name: round(v, 2) for name, v in sorted(expected.items(), key=lambda kv: -kv[1])[:10]
    }


async def test_one_failing_scan_is_named_not_dropped(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        sb.faults.script("POST /v1/cost-guard/scans-recommendations", [Fault(status=404)])
        out = await call(client, "summarize_savings")
    failed = [s for s in out["scans"] if s.get("error")]
    assert len(failed) == 1 and failed[0]["yearly_potential_savings"] is None
    assert any(failed[0]["name"] in n and "Could not fetch" in n for n in out["notes"])
    fetched = sum(v for n, v in by_scan(sb).items() if n != failed[0]["name"])
    assert abs(out["sum_of_scan_totals"] - fetched) < 0.05


async def test_only_one_cost_center(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        out = await call(client, "summarize_savings", {"cost_center": "gcp"})
        message = await call_error(client, "summarize_savings", {"cost_center": "Oracle"})
    gcp = [s.name for s in sb.account.scans if s.cost_center == "GCP"]
    assert sorted(s["name"] for s in out["scans"]) == sorted(gcp)
    assert "list_costguard_scans" in message
