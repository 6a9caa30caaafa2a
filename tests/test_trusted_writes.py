"""Writes that stay correct with other writers, stale caches, dependent tags and partial failures.

Everything runs against the sandbox account (in memory, through the MCP client); the sandbox is
mutated directly to play "another writer" (a person in Finout's UI, another assistant).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import ElicitRequestParams, ElicitResult

from finout_mcp.config import Settings
from finout_mcp.sandbox import Sandbox
from finout_mcp.sandbox.faults import Fault
from finout_mcp.server.app import build_server
from finout_mcp.services.changelog import ChangeStore
from tests.support import TODAY, another_writer_after_each_put, call, call_error, demo, text, writes

VT = "Virtual Tags"
SERVER_FIELDS = {"id", "accountId", "createdAt", "createdBy", "updatedAt", "updatedBy"}


@asynccontextmanager
async def strict(tmp_path: Path, **client_kw: Any) -> AsyncIterator[tuple[Client, Sandbox]]:
    """The demo server with one attempt per request: one injected fault is one failed step."""
    sb = Sandbox(seed=7, today=TODAY)
    settings = Settings(demo=True, state_dir=tmp_path / "state", retry_max_attempts=1)
    server = build_server(settings, sandbox=sb, today=lambda: TODAY)
    async with Client(server, **client_kw) as client:
        yield client, sb


def tag_by_name(sb: Sandbox, name: str) -> dict[str, Any]:
    return next(t for t in sb.account.virtual_tags.values() if t["name"] == name)


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "displayName"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def account_state(sb: Sandbox) -> str:
    """The account's tags and metadata by name, with tag ids replaced by names (a recreated tag gets a
    new id; everything else must be exactly as before)."""
    names = {tid: t["name"] for tid, t in sb.account.virtual_tags.items()}

    def rename(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: rename(v) for k, v in value.items() if k != "displayName"}
            if out.get("costCenter") == VT and out.get("key") in names:
                out["key"] = "@" + names[out["key"]]
            return out
        if isinstance(value, list):
            return [rename(v) for v in value]
        return value

    tags = {
        t["name"]: {k: rename(v) for k, v in t.items() if k not in SERVER_FIELDS}
        for t in sb.account.virtual_tags.values()
    }
    metadata = {names[tid]: md for tid, md in sb.account.metadata.items() if tid in names and md}
    return json.dumps({"tags": tags, "metadata": metadata}, sort_keys=True)


# ----------------------------------------------------------------------------- wrong target


async def test_rename_plus_new_tag_with_the_old_name_between_two_calls(tmp_path: Path) -> None:
    """The tag list is cached; meanwhile someone renames 'Environment' and creates a new tag with the
    old name. A write by name goes to the tag that has that name NOW, and reports that tag; a write
    confirmed by a dry run on the old tag is refused."""
    async with demo(tmp_path) as (client, sb):
        await call(client, "list_virtual_tags")  # cache the list
        old = tag_by_name(sb, "Environment")
        preview = await call(
            client,
            "update_virtual_tag_metadata",
            {"tag": "Environment", "values": {"staging": {"customMetadata": {"tier": "pre"}}}, "dry_run": True},
        )
        assert preview["tag"]["id"] == old["id"]
        # another writer, in Finout's UI
        old["name"] = "Environment (old)"
        new = sb.account.new_tag("Environment", old["rules"], "untagged", "someone", datetime(2026, 11, 25))
        assert new["id"] != old["id"]

        # the dry run's version belonged to the old tag: refused, nothing sent
        message = await call_error(
            client,
            "update_virtual_tag_metadata",
            {
                "tag": "Environment",
                "values": {"staging": {"customMetadata": {"tier": "pre"}}},
                "expected_version": preview["expected_version"],
            },
        )
        assert "changed since the dry run" in message and writes(sb) == []

        done = await call(
            client,
            "update_virtual_tag_metadata",
            {"tag": "Environment", "values": {"staging": {"customMetadata": {"tier": "pre"}}}},
        )
        assert done["tag"]["id"] == new["id"] and done["tag"]["name"] == "Environment"
        assert sb.account.metadata[new["id"]]["staging"]["customMetadata"] == {"tier": "pre"}
        assert sb.account.metadata[old["id"]]["staging"]["customMetadata"] == {"tier": "non-prod"}  # untouched
        # by id, the renamed tag is still reachable; its name is checked against the request
        shown = await call(client, "update_virtual_tag", {"tag": old["id"], "default_value": "x", "dry_run": True})
        assert shown["tag"]["name"] == "Environment (old)"


async def test_update_refused_when_the_tag_changed_since_the_dry_run(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        preview = await call(
            client, "update_virtual_tag", {"tag": "Environment", "default_value": "shared", "dry_run": True}
        )
        version = preview["expected_version"]
        assert version and preview["status"] == "dry_run"
        tag_by_name(sb, "Environment")["rules"].pop()  # someone removes a rule in the UI
        message = await call_error(
            client,
            "update_virtual_tag",
            {"tag": "Environment", "default_value": "shared", "expected_version": version},
        )
        assert "changed since the dry run" in message and "1 removed" in message, message
        assert writes(sb) == []
        again = await call(
            client, "update_virtual_tag", {"tag": "Environment", "default_value": "shared", "dry_run": True}
        )
        done = await call(
            client,
            "update_virtual_tag",
            {"tag": "Environment", "default_value": "shared", "expected_version": again["expected_version"]},
        )
        assert done["status"] == "updated" and tag_by_name(sb, "Environment")["defaultValue"] == "shared"


async def test_read_back_mismatch_is_reported_as_another_writers_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer changes the tag between our PUT and our read-back: both versions are shown."""
    async with demo(tmp_path) as (client, sb):
        env = tag_by_name(sb, "Environment")
        another_writer_after_each_put(monkeypatch, sb)
        done = await call(client, "update_virtual_tag", {"tag": "Environment", "default_value": "ours"})
        assert done["status"] == "updated" and done["conflict"] is not None
        assert done["conflict"]["sent"]["defaultValue"] == "ours"
        assert done["conflict"]["found"]["defaultValue"] == "someone-else"
        assert any("another writer" in w for w in done["warnings"])
        assert sb.account.virtual_tags[env["id"]]["defaultValue"] == "someone-else"


# ----------------------------------------------------------------------------- dependencies


def codes(report: dict[str, Any]) -> list[str]:
    return sorted(f["code"] for r in report["rules"] for f in r["findings"] if f["severity"] == "error")


async def test_parent_and_child_through_update_delete_undo_and_lint(tmp_path: Path) -> None:
    """'Business Unit' filters on Team's values and takes Team's value (a `to` object)."""
    async with demo(tmp_path) as (client, sb):
        team, bu = tag_by_name(sb, "Team"), tag_by_name(sb, "Business Unit")
        before = account_state(sb)
        lint_before = await call(client, "lint_virtual_tag", {"tag": "Business Unit"})
        # the seeded account filters on a Team value no Team rule produces: an error naming the cause
        (ml,) = [f for r in lint_before["rules"] for f in r["findings"] if f["code"] == "unproduced_tag_value"]
        assert ml["severity"] == "error" and "«ml»" in ml["message"] and "«Team»" in ml["message"]

        # update: dropping the rule that produces 'checkout' breaks a condition of Business Unit
        kept = [{"to": r["to"], "filter": _strip(r["filters"])} for r in team["rules"] if r["to"] != "checkout"]
        preview = await call(client, "update_virtual_tag", {"tag": "Team", "rules": kept, "dry_run": True})
        assert preview["diff"]["values_removed"] == ["checkout"] and preview["destructive"]
        assert preview["dependents"]["tags"] == [f"Business Unit ({bu['id']})"]
        (broken,) = preview["dependents"]["broken"]
        assert broken["tag_name"] == "Business Unit" and broken["rule"] == 1 and broken["missing"] == ["checkout"]
        assert any("Business Unit" in w and "checkout" in w for w in preview["warnings"])
        assert any("Metadata stays on values" in w and "checkout" in w for w in preview["warnings"])

        # delete: refused, naming each reference; then forced
        message = await call_error(client, "delete_virtual_tag", {"tag": "Team", "confirm_name": "Team"})
        assert "«Business Unit» rule 1 takes its value from it" in message
        assert "«Business Unit» rule 2 filters on it" in message and "rule 3" in message
        assert writes(sb) == []
        deleted = await call(client, "delete_virtual_tag", {"tag": "Team", "confirm_name": "Team", "force": True})
        assert deleted["status"] == "deleted" and team["id"] not in sb.account.virtual_tags
        linted = await call(client, "lint_virtual_tag", {"tag": "Business Unit"})
        assert "unknown_tag_reference" in codes(linted)  # its references now point at a missing tag

        # undo: recreated under a new id, every reference repointed, in the same recorded undo
        dry = await call(client, "undo_change", {"change_id": deleted["change_id"], "dry_run": True})
        assert any("repoint references in tag «Business Unit»" in s for s in dry["steps"])
        assert dry["metadata_diff"]["added"]  # the metadata it restores
        undone = await call(client, "undo_change", {"change_id": deleted["change_id"]})
        new_id = undone["tag"]["id"]
        assert new_id != team["id"] and undone["tag"]["rules"] == len(team["rules"])
        assert account_state(sb) == before
        refs = json.dumps(sb.account.virtual_tags[bu["id"]]["rules"])
        assert new_id in refs and team["id"] not in refs
        changes = await call(client, "list_changes", {"tag": "Business Unit"})
        assert [c["change_id"] for c in changes["changes"]] == [undone["change_id"]]
        assert new_id in changes["changes"][0]["ids"]
        linted = await call(client, "lint_virtual_tag", {"tag": "Business Unit"})
        assert codes(linted) == codes(lint_before)  # the references work again, nothing new is broken

        # lint: a condition on a value Team never produces is an error naming the cause
        rules = [{"to": "x", "filter": {"key": new_id, "cost_center": VT, "op": "in", "values": ["chekout"]}}]
        report = await call(client, "lint_virtual_tag", {"rules": rules, "default_value": "other"})
        (finding,) = [f for r in report["rules"] for f in r["findings"] if f["code"] == "unproduced_tag_value"]
        assert finding["severity"] == "error" and "no rule of virtual tag «Team» produces it" in finding["message"]
        assert "checkout" in finding["candidates"] and "new data" not in finding["message"]


async def test_undoing_a_create_that_another_tag_now_uses_is_refused_naming_it(tmp_path: Path) -> None:
    """Undo of a create deletes the tag: like delete_virtual_tag, it does not silently break a tag
    made since that takes its value from it or filters on it."""
    ns = {"key": "namespace", "cost_center": "Kubernetes", "op": "=", "value": "checkout"}
    async with demo(tmp_path) as (client, sb):
        product = await call(
            client, "create_virtual_tag", {"name": "Product", "rules": [{"to": "Shop", "filter": ns}]}
        )
        pid = product["tag"]["id"]
        plain = await call(client, "undo_change", {"change_id": product["change_id"], "dry_run": True})
        assert not any("refer" in n for n in plain["notes"] + plain["warnings"])  # nothing refers to it yet
        await call(
            client,
            "create_virtual_tag",
            {"name": "Line", "rules": [{"to": {"key": pid}, "filter": ns}], "default_value": "other"},
        )
        state = account_state(sb)
        message = await call_error(client, "undo_change", {"change_id": product["change_id"], "dry_run": True})
        assert (
            "refused" in message and "«Line» rule 1 takes its value from it" in message and "force=true" in message
        )
        message = await call_error(client, "undo_change", {"change_id": product["change_id"]})
        assert "«Line» rule 1" in message and account_state(sb) == state  # nothing was sent
        (listed,) = [c for c in (await call(client, "list_changes", {}))["changes"] if c["tag_id"] == pid]
        assert not listed["undoable"] and "«Line» rule 1 takes its value from it" in listed["why_not"]
        forced = await call(client, "undo_change", {"change_id": product["change_id"], "force": True})
    assert forced["status"] == "undone" and pid not in sb.account.virtual_tags
    assert any("«Line» rule 1 takes its value from it" in w for w in forced["warnings"])


async def test_undo_works_for_a_tag_whose_default_is_another_tags_value(tmp_path: Path) -> None:
    """A default value that is a reference reads as text in every undo result (forcing the undo of a
    create with such a default failed with an error about a default_value argument undo does not take)."""
    ns = {"key": "namespace", "cost_center": "Kubernetes", "op": "=", "value": "checkout"}
    async with demo(tmp_path) as (client, sb):
        team, bu = tag_by_name(sb, "Team"), tag_by_name(sb, "Business Unit")
        owner = await call(
            client,
            "create_virtual_tag",
            {
                "name": "Cost owner",
                "rules": [{"to": "Payments", "filter": ns}],
                "default_value": {"key": team["id"]},
            },
        )
        await call(
            client,
            "create_virtual_tag",
            {"name": "Rollup", "rules": [{"to": {"key": owner["tag"]["id"]}, "filter": ns}]},
        )
        forced = await call(
            client, "undo_change", {"change_id": owner["change_id"], "dry_run": True, "force": True}
        )
        assert forced["tag"]["default_value"] == f"value of tag {team['id']}" and forced["warnings"]
        # the seeded Business Unit takes Team's value by default: delete it, then undo the delete
        deleted = await call(
            client, "delete_virtual_tag", {"tag": "Business Unit", "confirm_name": "Business Unit"}
        )
        assert deleted["tag"]["default_value"] == f"value of tag {team['id']}"
        undone = await call(client, "undo_change", {"change_id": deleted["change_id"]})
    assert undone["status"] == "undone" and undone["tag"]["default_value"] == f"value of tag {team['id']}"
    assert bu["name"] in {t["name"] for t in sb.account.virtual_tags.values()}


async def test_metadata_warnings_unproduced_values_and_case_only_differences(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        preview = await call(
            client,
            "update_virtual_tag_metadata",
            {"tag": "Team", "values": {"Checkout": {"groups": []}, "nobody": {"groups": []}}, "dry_run": True},
        )
        warnings = " ".join(preview["warnings"])
        assert "«Checkout» differs only in case from «checkout»" in warnings
        assert "No rule of this tag produces «Checkout», «nobody»" in warnings
        assert preview["metadata_diff"]["added"] == ["Checkout", "nobody"] and "body" not in json.dumps(
            {k: v for k, v in preview.items() if k == "body" and v}
        )


# ----------------------------------------------------------------------------- truthful outcomes


STEP_ROUTES = [
    ("POST /v1/virtual-tags", "recreate tag"),
    ("PUT /v1/virtual-tags/{id}/metadata", "restore metadata"),
    ("PUT /v1/virtual-tags/{id}", "repoint references"),
]


@pytest.mark.parametrize(("route", "step"), STEP_ROUTES)
async def test_fault_at_each_step_of_undo_then_undo_again_restores_the_account(
    tmp_path: Path, route: str, step: str
) -> None:
    """Undo of a delete is three steps (recreate, metadata, repoint the child). A fault at each step
    leaves a truthful partial record; calling undo_change again finishes it; the account ends exactly
    as before the delete."""
    async with strict(tmp_path) as (client, sb):
        before = account_state(sb)
        deleted = await call(client, "delete_virtual_tag", {"tag": "Team", "confirm_name": "Team", "force": True})
        sb.faults.script(route, [Fault(500)])
        message = await call_error(client, "undo_change", {"change_id": deleted["change_id"]})
        if step == "recreate tag":
            assert "500" in message  # nothing happened: an ordinary failure
        else:
            assert "applied only in part" in message and f"Failed: {step}" in message, message
            assert "new id" in message and "Call undo_change with the same change_id again" in message
        log = await call(client, "list_changes", {"limit": 1})
        assert log["changes"][0]["status"] == ("failed" if step == "recreate tag" else "partial")
        for _ in range(3):  # undo again until it is done
            result = await client.call_tool("undo_change", {"change_id": deleted["change_id"]})
            if not result.is_error:
                break
        assert not result.is_error, text(result)
        assert account_state(sb) == before
        assert len([t for t in sb.account.virtual_tags.values() if t["name"] == "Team"]) == 1  # no duplicate


@pytest.mark.parametrize(
    ("tool", "args", "route"),
    [
        ("update_virtual_tag", {"tag": "Team", "default_value": "shared"}, "PUT /v1/virtual-tags/{id}"),
        (
            "delete_virtual_tag",
            {"tag": "Environment", "confirm_name": "Environment"},
            "DELETE /v1/virtual-tags/{id}",
        ),
        (
            "update_virtual_tag_metadata",
            {"tag": "Team", "values": {"search": {"groups": ["g"]}}, "mode": "replace"},
            "PUT /v1/virtual-tags/{id}/metadata",
        ),
    ],
)
async def test_fault_on_a_write_leaves_the_account_as_it_was(
    tmp_path: Path, tool: str, args: dict[str, Any], route: str
) -> None:
    async with strict(tmp_path) as (client, sb):
        before = account_state(sb)
        sb.faults.script(route, [Fault(500)])
        message = await call_error(client, tool, args)
        assert "500" in message
        assert account_state(sb) == before
        log = await call(client, "list_changes", {"limit": 1})
        assert log["changes"][0]["status"] == "failed" and not log["changes"][0]["undoable"]


async def test_a_write_that_reached_finout_is_never_reported_failed_for_bookkeeping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with demo(tmp_path) as (client, sb):

        def broken_finish(self: ChangeStore, *a: Any, **kw: Any) -> Any:
            raise OSError("disk full")

        monkeypatch.setattr(ChangeStore, "finish", broken_finish)
        done = await call(client, "update_virtual_tag", {"tag": "Environment", "default_value": "shared"})
        assert done["status"] == "updated" and done["change_id"]
        assert tag_by_name(sb, "Environment")["defaultValue"] == "shared"
        assert any("could not record: the outcome (OSError)" in n for n in done["notes"]), done["notes"]
        monkeypatch.undo()
        # the intent (with its before-image) was stored first: the write stays undoable
        undone = await call(client, "undo_change", {"change_id": done["change_id"], "force": True})
        assert undone["status"] == "undone" and tag_by_name(sb, "Environment")["defaultValue"] == "untagged"


async def test_no_write_is_sent_without_its_intent_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with demo(tmp_path) as (client, sb):

        def broken_begin(self: ChangeStore, *a: Any, **kw: Any) -> Any:
            raise OSError("read-only file system")

        monkeypatch.setattr(ChangeStore, "begin", broken_begin)
        message = await call_error(client, "update_virtual_tag", {"tag": "Environment", "default_value": "shared"})
        assert "Nothing was sent" in message and "could not record this write" in message
        assert writes(sb) == []


async def test_a_failed_read_back_is_said_not_hidden(tmp_path: Path) -> None:
    """The PUT went through; the read-back after it fails: 'updated', with a warning to check."""
    async with strict(tmp_path) as (client, sb):
        # fresh list, tag by id, re-read under the lock pass; the read-back after the PUT fails
        sb.faults.script("GET /v1/virtual-tags/{id}", [Fault(None), Fault(None), Fault(500)])
        done = await call(client, "update_virtual_tag", {"tag": "Environment", "default_value": "shared"})
        assert done["status"] == "updated" and tag_by_name(sb, "Environment")["defaultValue"] == "shared"
        assert any("could not be read back" in w for w in done["warnings"])


async def test_counts_in_undo_and_metadata_results_are_right(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        team = tag_by_name(sb, "Team")
        md = await call(
            client, "update_virtual_tag_metadata", {"tag": "Team", "values": {"ml": {"groups": ["g"]}}}
        )
        assert md["tag"]["rules"] == len(team["rules"])
        undone = await call(client, "undo_change", {"change_id": md["change_id"]})
        assert undone["tag"]["rules"] == len(team["rules"])
        assert undone["metadata_diff"]["removed"] == ["ml"] and undone["metadata_diff"]["changed"] == {}


# ----------------------------------------------------------------------------- the log and its importer


async def test_list_changes_shows_who_what_and_undoability(tmp_path: Path) -> None:
    legacy = {
        "change_id": "chg_20261101T000000Z_abc",
        "at": "2026-11-01T00:00:00.000000Z",
        "operation": "create_endpoint",
        "target_type": "endpoint",
        "target_id": "e9",
        "target_name": "old-alerts",
        "status": "done",
    }
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "changes.jsonl").write_text(json.dumps(legacy) + "\n")
    async with demo(tmp_path) as (client, _sb):
        upd = await call(client, "update_virtual_tag", {"tag": "Environment", "default_value": "shared"})
        await call(client, "undo_change", {"change_id": upd["change_id"]})
        log = await call(client, "list_changes", {})
        ops = [(c["operation"], c["status"], c["undoable"]) for c in log["changes"]]
        assert ops == [
            ("undo (update_virtual_tag)", "done", True),
            ("update_virtual_tag", "done", False),
            ("create_endpoint", "done", False),
        ]
        undo, update, imported = log["changes"]
        assert update["undone_by"] == undo["change_id"] and "already undone" in update["why_not"]
        assert update["actor"] and update["actor"] == undo["actor"]  # the OS user over stdio/in memory
        assert "default value «untagged» → «shared»" in update["intent"]
        assert imported["actor"] == "(imported)" and "cannot delete endpoints" in imported["why_not"]
        only = await call(client, "list_changes", {"tag": "old-alerts"})
        assert [c["change_id"] for c in only["changes"]] == [legacy["change_id"]]


async def test_the_actor_is_injectable(tmp_path: Path) -> None:
    """Over stdio the OS user writes; a transport that knows an authenticated subject passes it."""
    sb = Sandbox(seed=7, today=TODAY)
    settings = Settings(demo=True, state_dir=tmp_path / "state")
    server = build_server(settings, sandbox=sb, today=lambda: TODAY, actor=lambda _ctx: "alice@acme.example")
    async with Client(server) as client:
        await call(client, "update_virtual_tag", {"tag": "Environment", "default_value": "shared"})
        (change,) = (await call(client, "list_changes", {}))["changes"]
        assert change["actor"] == "alice@acme.example"


# ----------------------------------------------------------------------------- elicitation


def answering(action: str, confirm: bool = True) -> Any:
    asked: list[str] = []

    async def callback(_ctx: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        if action == "accept":
            return ElicitResult(action="accept", content={"confirm": confirm})
        return ElicitResult(action=action)  # type: ignore[arg-type]

    callback.asked = asked  # type: ignore[attr-defined]
    return callback


@pytest.mark.parametrize("action", ["accept", "decline", "cancel"])
async def test_elicitation_accept_decline_cancel(tmp_path: Path, action: str) -> None:
    cb = answering(action)
    async with strict(tmp_path, elicitation_callback=cb) as (client, sb):
        env = tag_by_name(sb, "Environment")
        result = await call(client, "delete_virtual_tag", {"tag": "Environment", "confirm_name": "Environment"})
        (question,) = cb.asked
        assert "Delete virtual tag Environment?" in question and f"DELETE /virtual-tags/{env['id']}" in question
        if action == "accept":
            assert result["status"] == "deleted" and env["id"] not in sb.account.virtual_tags
        else:
            assert result["status"] == ("declined" if action == "decline" else "cancelled")
            assert writes(sb) == [] and env["id"] in sb.account.virtual_tags
            assert "nothing was sent" in result["notes"][0]


async def test_elicitation_shows_the_readable_diff_and_skips_harmless_writes(tmp_path: Path) -> None:
    cb = answering("accept", confirm=False)
    async with strict(tmp_path, elicitation_callback=cb) as (client, sb):
        team = tag_by_name(sb, "Team")
        kept = [{"to": r["to"], "filter": _strip(r["filters"])} for r in team["rules"] if r["to"] != "checkout"]
        result = await call(client, "update_virtual_tag", {"tag": "Team", "rules": kept})
        assert result["status"] == "declined" and writes(sb) == []  # 'confirm' left unticked
        (question,) = cb.asked
        assert "values no longer produced: «checkout»" in question and "Business Unit" in question
        # adding a value removes nothing: no question
        await call(client, "update_virtual_tag_metadata", {"tag": "Team", "values": {"ml": {"groups": ["g"]}}})
        assert len(cb.asked) == 1
        # a dry run never asks
        await call(
            client, "delete_virtual_tag", {"tag": "Environment", "confirm_name": "Environment", "dry_run": True}
        )
        assert len(cb.asked) == 1


async def test_clients_without_elicitation_keep_the_dry_run_and_confirm_name_flow(tmp_path: Path) -> None:
    async with strict(tmp_path) as (client, sb):
        env = tag_by_name(sb, "Environment")
        dry = await call(
            client, "delete_virtual_tag", {"tag": "Environment", "confirm_name": "Environment", "dry_run": True}
        )
        assert dry["status"] == "dry_run" and writes(sb) == []
        done = await call(
            client,
            "delete_virtual_tag",
            {"tag": "Environment", "confirm_name": "Environment", "expected_version": dry["expected_version"]},
        )
        assert done["status"] == "deleted" and env["id"] not in sb.account.virtual_tags
