"""Virtual tag metadata, endpoints and CostGuard through the MCP client."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import call, call_error, demo, text, writes


async def test_metadata_merge_keeps_existing_values(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        team = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Team")
        before = json.loads(json.dumps(sb.account.metadata[team["id"]]))
        value = next(iter(before))
        out = await call(
            client,
            "update_virtual_tag_metadata",
            {
                "tag": "Team",
                "values": {value: {"customMetadata": {"budget": "1"}}, "new-value": {"groups": ["g1"]}},
            },
        )
        assert out["status"] == "updated" and out["change_id"]
        after = sb.account.metadata[team["id"]]
        assert set(after) == set(before) | {"new-value"}
        assert after[value]["customMetadata"]["budget"] == "1"
        for k, v in before[value]["customMetadata"].items():
            if k != "budget":
                assert after[value]["customMetadata"][k] == v
        assert after[value]["endpoints"] == before[value]["endpoints"]
        await call(client, "undo_change", {"change_id": out["change_id"]})
        assert sb.account.metadata[team["id"]] == before


async def test_metadata_replace_and_dry_run(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        preview = await call(
            client,
            "update_virtual_tag_metadata",
            {
                "tag": "Team",
                "values": {"only": {"groups": []}},
                "mode": "replace",
                "dry_run": True,
                "include_body": True,
            },
        )
        assert preview["status"] == "dry_run" and writes(sb) == []
        assert list(preview["body"]) == ["only"]  # the bare value map PUT sends (no "metadata" wrapper)
        assert preview["metadata_diff"]["added"] == ["only"] and preview["metadata_diff"]["removed"]
        assert "removes" in preview["metadata_diff"]["summary"]


async def test_metadata_rejects_dots_and_unknown_endpoints_before_sending(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        message = await call_error(
            client, "update_virtual_tag_metadata", {"tag": "Team", "values": {"v1.2": {"groups": []}}}
        )
        assert "v1.2" in message and "dot" in message.lower()
        message = await call_error(
            client, "update_virtual_tag_metadata", {"tag": "Team", "values": {"x": {"endpoints": ["nope"]}}}
        )
        assert "nope" in message and "list_endpoints" in message
        assert writes(sb) == []


async def test_endpoints_are_masked_and_validated(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        hooks = [e["configuration"]["to"] for e in sb.account.endpoints if e["type"] == "slack"]
        result = await client.call_tool("list_endpoints", {})
        body = text(result) + json.dumps(result.structured_content)
        assert hooks and all(h not in body for h in hooks)
        assert "hooks.slack.com/…" in body
        types = {e["type"] for e in result.structured_content["endpoints"]}  # type: ignore[index]
        assert types == {"email", "slack", "msteams"}

        for to in ("http://hooks.slack.com/services/T/B/x", "https://hooks.slack.com.evil.example/services/x"):
            message = await call_error(client, "create_endpoint", {"type": "slack", "name": "alerts", "to": to})
            assert "hooks.slack.com" in message
        message = await call_error(
            client, "create_endpoint", {"type": "email", "name": "x", "to": "not-an-address"}
        )
        assert "not-an-address" in message
        assert writes(sb) == []


async def test_create_endpoint_is_idempotent_and_never_echoes_the_webhook(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        hook = "https://hooks.slack.com/services/T123/B456/abcdefghijklmnop"
        args = {"type": "slack", "name": "cost-alerts", "to": hook}
        created = await client.call_tool("create_endpoint", args)
        again = await client.call_tool("create_endpoint", args)
        for result in (created, again):
            assert not result.is_error and hook not in text(result) + json.dumps(result.structured_content)
        assert again.structured_content["status"] == "unchanged"  # type: ignore[index]
        assert writes(sb) == [("POST", "/v1/endpoints")]
        # the change log on disk (database and its WAL) never holds the webhook
        raw = "".join(
            p.read_bytes().decode("utf-8", "replace") for p in (tmp_path / "state").glob("changes.sqlite3*")
        )
        assert hook not in raw and "cost-alerts" in raw


async def test_costguard_summaries_match_the_sandbox_totals(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        scans = (await call(client, "list_costguard_scans"))["scans"]
        assert len(scans) >= 6 and all(s["last_run"] for s in scans)
        idle = await call(client, "list_costguard_scans", {"type": "idle"})
        assert idle["scans"] and all(s["type"] == "idle" for s in idle["scans"])
        for scan in scans:
            out = await call(client, "get_scan_recommendations", {"scan": scan["name"], "top_n": 2})
            truth = sb.account.scan(scan["id"])
            assert truth is not None
            expected = sum(r.yearly_savings for r in truth.resources)
            assert abs(out["totals"]["yearly_potential_savings"] - expected) < 0.05
            assert out["resource_count"] == len(truth.resources)
            for g in out["groups"]:
                assert len(g["resources"]) <= 2
                assert g["more_resources"] == g["resource_count"] - len(g["resources"])
                assert all(r["reason"] for r in g["resources"])
            assert out["truncated"] == any(g["more_resources"] for g in out["groups"])


async def test_recommendations_grouped_and_filtered(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        scans = (await call(client, "list_costguard_scans", {"cost_center": "AWS"}))["scans"]
        ec2 = next(s for s in scans if "EC2" in s["name"])
        whole = await call(client, "get_scan_recommendations", {"scan": ec2["id"]})
        grouped = await call(client, "get_scan_recommendations", {"scan": ec2["id"], "group_by": "Account Name"})
        assert len(grouped["groups"]) > 1
        savings = [g["totals"]["yearly_potential_savings"] for g in grouped["groups"]]
        assert savings == sorted(savings, reverse=True)
        assert abs(sum(savings) - whole["totals"]["yearly_potential_savings"]) < 0.05
        only = await call(
            client,
            "get_scan_recommendations",
            {"scan": ec2["id"], "filter": {"key": "Account Name", "op": "=", "value": "prod-eu"}},
        )
        assert only["totals"]["yearly_potential_savings"] < whole["totals"]["yearly_potential_savings"]
        message = await call_error(
            client,
            "get_scan_recommendations",
            {"scan": ec2["id"], "filter": {"key": "acount nme", "op": "exists"}},
        )
        assert "aws_account_name" in message


async def test_applied_metadata_write_returns_the_version_the_next_write_accepts(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        first = await call(
            client, "update_virtual_tag_metadata", {"tag": "Team", "values": {"new-value": {"groups": ["g1"]}}}
        )
        assert first["status"] == "updated"
        second = await call(
            client,
            "update_virtual_tag_metadata",
            {
                "tag": "Team",
                "values": {"new-value": {"groups": ["g2"]}},
                "dry_run": False,
                "expected_version": first["expected_version"],
            },
        )
        assert second["status"] == "updated"
        team = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Team")
        assert "g2" in json.dumps(sb.account.metadata[team["id"]]["new-value"])
