"""Virtual tags end to end: compose -> dry run -> create, safety rules, and undo round trips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import another_writer_after_each_put, call, call_error, demo, dumps, writes

CHECKOUT_RULE: dict[str, Any] = {
    "to": "Checkout",
    "filter": {
        "any": [
            {"key": "Account Name", "op": "in", "values": ["prod-eu", "prod-us"]},
            {"key": "namespace", "cost_center": "Kubernetes", "op": "=", "value": "checkout"},
        ]
    },
}


async def test_allocate_prod_accounts_and_checkout_namespace(tmp_path: Path) -> None:
    """The issue's story: compose, dry run (nothing sent), create, then read it back."""
    async with demo(tmp_path) as (client, sb):
        composed = await call(client, "compose_filter", {"intent": CHECKOUT_RULE["filter"]})
        assert composed["ok"] and composed["filter"] == {
            "OR": [
                {
                    "costCenter": "AWS",
                    "key": "aws_account_name",
                    "operator": "oneOf",
                    "value": ["prod-eu", "prod-us"],
                },
                {"costCenter": "Kubernetes", "key": "namespace", "operator": "is", "value": "checkout"},
            ]
        }
        args = {"name": "Product", "rules": [CHECKOUT_RULE], "default_value": "unallocated"}
        preview = await call(client, "create_virtual_tag", {**args, "dry_run": True, "include_body": True})
        assert preview["status"] == "dry_run" and preview["change_id"] is None
        assert preview["body"] == {
            "name": "Product",
            "rules": [{"to": "Checkout", "filters": composed["filter"]}],
            "defaultValue": "unallocated",
        }
        assert writes(sb) == []  # a dry run sends nothing

        created = await call(client, "create_virtual_tag", args)
        assert created["status"] == "created" and created["change_id"]
        assert writes(sb) == [("POST", "/v1/virtual-tags")]
        stored = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Product")
        assert stored["rules"][0]["filters"] == composed["filter"] and stored["defaultValue"] == "unallocated"

        shown = await call(client, "get_virtual_tag", {"tag": "Product"})
        assert "Account Name in [prod-eu, prod-us]" in shown["rules"][0]["readable"]


async def test_mistyped_key_gets_did_you_mean_and_no_request(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        rule = {"to": "Checkout", "filter": {"key": "acount name", "op": "in", "values": ["prod-eu"]}}
        message = await call_error(client, "create_virtual_tag", {"name": "Product", "rules": [rule]})
        assert "Nothing was written" in message and "aws_account_name" in message
        assert writes(sb) == []
        assert all(r.status != 422 for r in sb.request_log)


async def test_create_is_idempotent_by_name(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        args = {"name": "Product", "rules": [CHECKOUT_RULE], "default_value": "unallocated"}
        await call(client, "create_virtual_tag", args)
        again = await call(client, "create_virtual_tag", args)
        assert again["status"] == "unchanged" and again["change_id"] is None
        assert writes(sb) == [("POST", "/v1/virtual-tags")]
        other = {**args, "default_value": "other"}
        message = await call_error(client, "create_virtual_tag", other)
        assert "update_virtual_tag" in message


async def test_update_keeps_fields_not_given_and_dry_run_diffs(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        team = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Team")
        before_rules = dumps(team["rules"])
        preview = await call(
            client,
            "update_virtual_tag",
            {"tag": "Team", "default_value": "shared", "dry_run": True, "include_body": True},
        )
        assert preview["status"] == "dry_run" and writes(sb) == []
        assert preview["diff"]["default_changed"] and preview["diff"]["after_default"] == "shared"
        # unchanged rules are summarised by position, not repeated
        assert preview["diff"]["rules"] == [] and preview["diff"]["unchanged_rules"] == list(
            range(1, len(team["rules"]) + 1)
        )
        assert preview["body"]["name"] == "Team" and len(preview["body"]["rules"]) == len(team["rules"])
        done = await call(client, "update_virtual_tag", {"tag": "Team", "default_value": "shared"})
        assert done["status"] == "updated" and writes(sb) == [("PUT", f"/v1/virtual-tags/{team['id']}")]
        after = sb.account.virtual_tags[team["id"]]
        assert after["defaultValue"] == "shared"
        assert dumps(_strip(after["rules"])) == dumps(_strip(__import__("json").loads(before_rules)))


async def test_update_rules_dry_run_shows_rule_diff(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        preview = await call(
            client, "update_virtual_tag", {"tag": "Team", "rules": [CHECKOUT_RULE], "dry_run": True}
        )
        changes = {d["change"] for d in preview["diff"]["rules"]}
        assert changes & {"added", "removed", "changed"}


async def test_delete_needs_the_exact_current_name(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        await call(client, "create_virtual_tag", {"name": "Product", "rules": [CHECKOUT_RULE]})
        message = await call_error(client, "delete_virtual_tag", {"tag": "Product", "confirm_name": "product"})
        assert "confirm_name" in message
        assert "DELETE" not in {m for m, _ in writes(sb)}


async def test_delete_refused_while_another_tag_refers_to_it(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        message = await call_error(client, "delete_virtual_tag", {"tag": "Team", "confirm_name": "Team"})
        assert "Business Unit" in message
        assert writes(sb) == []


async def test_create_update_delete_undo_round_trip_restores_the_tag(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        env = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Environment")
        original = _content(env)
        original_meta = dumps(sb.account.metadata.get(env["id"], {}))

        upd = await call(client, "update_virtual_tag", {"tag": "Environment", "rules": [CHECKOUT_RULE]})
        assert _content(sb.account.virtual_tags[env["id"]]) != original
        undone = await call(client, "undo_change", {"change_id": upd["change_id"]})
        assert undone["status"] == "undone"
        assert _content(sb.account.virtual_tags[env["id"]]) == original

        deleted = await call(client, "delete_virtual_tag", {"tag": "Environment", "confirm_name": "Environment"})
        assert env["id"] not in sb.account.virtual_tags
        restored = await call(client, "undo_change", {"change_id": deleted["change_id"]})
        new = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Environment")
        assert _content(new) == original
        assert dumps(sb.account.metadata.get(new["id"], {})) == original_meta
        assert restored["tag"]["id"] == new["id"]

        # the undo is itself recorded: undoing it deletes the recreated tag again
        redo = await call(client, "undo_change", {"change_id": restored["change_id"]})
        assert redo["status"] == "undone"
        assert all(t["name"] != "Environment" for t in sb.account.virtual_tags.values())


async def test_undo_of_create_deletes_and_second_undo_is_refused(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        created = await call(client, "create_virtual_tag", {"name": "Product", "rules": [CHECKOUT_RULE]})
        preview = await call(client, "undo_change", {"change_id": created["change_id"], "dry_run": True})
        assert preview["status"] == "dry_run" and any(
            t["name"] == "Product" for t in sb.account.virtual_tags.values()
        )
        await call(client, "undo_change", {"change_id": created["change_id"]})
        assert all(t["name"] != "Product" for t in sb.account.virtual_tags.values())
        message = await call_error(client, "undo_change", {"change_id": created["change_id"]})
        assert "already undone" in message


async def test_undo_refuses_to_clobber_a_later_edit_unless_forced(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        first = await call(client, "update_virtual_tag", {"tag": "Environment", "default_value": "one"})
        await call(client, "update_virtual_tag", {"tag": "Environment", "default_value": "two"})
        message = await call_error(client, "undo_change", {"change_id": first["change_id"]})
        assert "force" in message
        await call(client, "undo_change", {"change_id": first["change_id"], "force": True})
        env = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Environment")
        assert env["defaultValue"] != "one"


async def test_clone_copies_rules_under_a_new_name(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        out = await call(client, "clone_virtual_tag", {"tag": "Team", "new_name": "Team (copy)"})
        assert out["status"] == "created"
        team = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Team")
        copy = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Team (copy)")
        assert dumps(_strip(copy["rules"])) == dumps(_strip(team["rules"]))


async def test_lint_finds_shadowed_rules_and_missing_default(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        rules = [
            {"to": "A", "filter": {"key": "namespace", "op": "in", "values": ["checkout", "payments"]}},
            {"to": "B", "filter": {"key": "namespace", "op": "=", "value": "checkout"}},
        ]
        report = await call(client, "lint_virtual_tag", {"rules": rules})
        codes = {f["code"] for r in report["rules"] for f in r["findings"]} | {
            f["code"] for f in report["findings"]
        }
        assert "shadowed_rule" in codes and "missing_default" in codes
        seeded = await call(client, "lint_virtual_tag", {"tag": "Team"})
        assert seeded["errors"] == 0


async def test_unknown_tag_lists_closest_names(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        message = await call_error(client, "get_virtual_tag", {"tag": "Teams"})
        assert "Team" in message and "list_virtual_tags" in message


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "displayName"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _content(tag: dict[str, Any]) -> str:
    return dumps({"name": tag["name"], "rules": _strip(tag["rules"]), "defaultValue": tag.get("defaultValue")})


async def test_applied_write_returns_the_new_version_and_chaining_it_is_accepted(tmp_path: Path) -> None:
    """A client that chains writes with the version an applied write returned is not refused."""
    async with demo(tmp_path) as (client, sb):
        preview = await call(
            client, "update_virtual_tag", {"tag": "Team", "default_value": "shared", "dry_run": True}
        )
        first = await call(
            client,
            "update_virtual_tag",
            {
                "tag": "Team",
                "default_value": "shared",
                "dry_run": False,
                "expected_version": preview["expected_version"],
            },
        )
        assert first["status"] == "updated"
        assert first["expected_version"] != preview["expected_version"]  # not the version from before the write
        again = await call(
            client, "update_virtual_tag", {"tag": "Team", "default_value": "pooled", "dry_run": True}
        )
        assert again["expected_version"] == first["expected_version"]
        second = await call(
            client,
            "update_virtual_tag",
            {
                "tag": "Team",
                "default_value": "pooled",
                "dry_run": False,
                "expected_version": first["expected_version"],
            },
        )
        assert second["status"] == "updated"
        assert next(t for t in sb.account.virtual_tags.values() if t["name"] == "Team")["defaultValue"] == "pooled"

        created = await call(client, "create_virtual_tag", {"name": "Product", "rules": [CHECKOUT_RULE]})
        chained = await call(
            client,
            "update_virtual_tag",
            {
                "tag": "Product",
                "default_value": "other",
                "dry_run": False,
                "expected_version": created["expected_version"],
            },
        )
        assert chained["status"] == "updated"


async def test_rule_numbers_agree_across_get_update_diff_and_lint(tmp_path: Path) -> None:
    """Rule 1 is rule 1 everywhere a user reads a rule number."""
    async with demo(tmp_path) as (client, sb):
        team = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Team")
        shown = await call(client, "get_virtual_tag", {"tag": "Team"})
        assert [r["index"] for r in shown["rules"]] == list(range(1, len(team["rules"]) + 1))
        # change only the first rule's value
        rules = [{"to": r["to"], "filter": r["filters"]} for r in team["rules"]]
        rules[0] = {**rules[0], "to": "renamed-first"}
        dry = await call(client, "update_virtual_tag", {"tag": "Team", "rules": rules, "dry_run": True})
        [changed] = dry["diff"]["rules"]
        assert changed["index"] == 1 and changed["after_index"] == 1 and changed["before_index"] == 1
        assert 1 not in dry["diff"]["unchanged_rules"]
        linted = await call(client, "lint_virtual_tag", {"rules": rules, "default_value": "other"})
        assert [r["index"] for r in linted["rules"]] == list(range(1, len(rules) + 1))


async def test_list_and_get_show_iso_dates_and_referenced_tags_by_name(tmp_path: Path) -> None:
    """Dates read as ISO 8601 UTC, timeframes as dates, and a reference to another tag by its name;
    what Finout holds (and what a PUT sends back) keeps the shape it was read in."""
    async with demo(tmp_path) as (client, sb):
        listed = await call(client, "list_virtual_tags", {})
        for t in listed["tags"]:
            assert t["updated_at"] is None or (t["updated_at"].endswith("Z") and "GMT" not in t["updated_at"])
        assert any(t["updated_at"] for t in listed["tags"])
        env = await call(client, "get_virtual_tag", {"tag": "Environment"})
        assert env["created_at"] is None or "GMT" not in env["created_at"]
        assert env["updated_at"] and env["updated_at"].endswith("Z")
        framed = [r["timeframe"] for r in env["rules"] if r["timeframe"]]
        assert framed and all(f["from"].endswith("Z") and f["from"][:2] == "20" for f in framed)
        raw = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Environment")
        raw_from = next(r["timeframe"]["from"] for r in raw["rules"] if "timeframe" in r)
        assert isinstance(raw_from, int)  # Finout's copy stays in epoch ms
        # a rule taking the value of another tag names it
        refs = [
            (t, r)
            for t in sb.account.virtual_tags.values()
            for r in t["rules"]
            if isinstance(r["to"], dict) and r["to"].get("costCenter") == "Virtual Tags"
        ]
        assert refs, "the demo account has a rule whose value comes from another tag"
        holder, rule = refs[0]
        target = sb.account.virtual_tags[rule["to"]["key"]]["name"]
        shown = await call(client, "get_virtual_tag", {"tag": holder["name"]})
        assert any(f"value of tag «{target}»" in (r["to_readable"] or "") for r in shown["rules"])
        assert any(r["to"] == rule["to"] for r in shown["rules"])  # the structured value is as read


async def test_list_changes_says_what_each_write_changed_value_by_value(tmp_path: Path) -> None:
    """The change log reads like a history: each write's summary names what changed, not just the intent."""
    async with demo(tmp_path) as (client, _sb):
        await call(
            client, "create_virtual_tag", {"name": "Product", "rules": [CHECKOUT_RULE], "default_value": "none"}
        )
        await call(
            client, "update_virtual_tag", {"tag": "Product", "default_value": "unallocated", "dry_run": False}
        )
        log = await call(client, "list_changes", {"limit": 5})
        updated, created = log["changes"][0], log["changes"][1]
        assert "created «Product» with 1 rule" in created["summary"]
        assert "none" in updated["summary"] and "unallocated" in updated["summary"]
        assert "store" not in log  # where the log lives is the operator's business, not the model's
        assert any("Only writes made through this server" in n for n in log["notes"])


async def test_adding_one_condition_the_documented_way_changes_only_that_rule(tmp_path: Path) -> None:
    """The recipe the guide and update_virtual_tag's description give: read the rules with
    include_filters, send them back (a no-op), then add a condition to one rule: only it changes."""
    async with demo(tmp_path) as (client, sb):
        for name in ("Team", "Environment"):  # Environment's rules carry timeframes: they go back as read
            read = await call(client, "get_virtual_tag", {"tag": name, "include_filters": True})
            same = await call(client, "update_virtual_tag", {"tag": name, "rules": read["rules"], "dry_run": True})
            assert same["status"] == "unchanged", same["diff"]
        read = await call(client, "get_virtual_tag", {"tag": "Team", "include_filters": True})
        rules = read["rules"]
        staging = {"key": "Account Name", "cost_center": "AWS", "op": "in", "values": ["staging"]}
        rules[0]["filter"] = {"any": [rules[0]["filter"], staging]}
        dry = await call(client, "update_virtual_tag", {"tag": "Team", "rules": rules, "dry_run": True})
        assert dry["diff"]["counts"] == {"added": 0, "removed": 0, "changed": 1, "moved": 0, "unchanged": 5}
        assert dry["diff"]["rules"][0]["value_changes"] == ["Account Name: new condition in [staging]"]
        applied = await call(
            client,
            "update_virtual_tag",
            {"tag": "Team", "rules": rules, "dry_run": False, "expected_version": dry["expected_version"]},
        )
        assert applied["status"] == "updated"
        team = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Team")
        assert {"costCenter": "AWS", "key": "aws_account_name", "operator": "oneOf", "value": ["staging"]} in team[
            "rules"
        ][0]["filters"]["OR"]


NAMESPACE_CHECKOUT = {"key": "namespace", "cost_center": "Kubernetes", "op": "=", "value": "checkout"}
STAGING_ACCOUNTS = {"key": "Account Name", "cost_center": "AWS", "op": "in", "values": ["staging"]}


async def test_update_dry_run_says_when_an_added_condition_is_already_allocated(tmp_path: Path) -> None:
    """Team's rule 1 already sends namespace checkout to «checkout»: adding it again (to that rule or
    in a new rule) is pointed out; the genuinely new condition (staging accounts) is not."""
    async with demo(tmp_path) as (client, _sb):
        read = await call(client, "get_virtual_tag", {"tag": "Team", "include_filters": True})
        rules = read["rules"]
        same = await call(client, "update_virtual_tag", {"tag": "Team", "rules": rules, "dry_run": True})
        assert same["warnings"] == []  # conditions the tag already has are not reported again
        widened = [
            {**rules[0], "filter": {"any": [rules[0]["filter"], NAMESPACE_CHECKOUT, STAGING_ACCOUNTS]}},
            *rules[1:],
        ]
        dry = await call(client, "update_virtual_tag", {"tag": "Team", "rules": widened, "dry_run": True})
        [warning] = dry["warnings"]
        assert warning.startswith("rule 1: Condition Kubernetes.Namespace = checkout is already allocated to")
        assert "already allocated to «checkout» by rule 1" in warning and "staging" not in warning
        appended = [*rules, {"to": "checkout", "filter": {"any": [NAMESPACE_CHECKOUT, STAGING_ACCOUNTS]}}]
        dry = await call(client, "update_virtual_tag", {"tag": "Team", "rules": appended, "dry_run": True})
        assert [w for w in dry["warnings"] if "already" in w] == [
            "rule 7: Condition Kubernetes.Namespace = checkout is already allocated to «checkout» by rule 1: "
            "this condition changes nothing."
        ]
        # sent to another value, the earlier rule still wins: said so too
        other = [*rules, {"to": "payments", "filter": {"any": [NAMESPACE_CHECKOUT, STAGING_ACCOUNTS]}}]
        dry = await call(client, "update_virtual_tag", {"tag": "Team", "rules": other, "dry_run": True})
        assert any(
            "already taken by rule 1 (→ «checkout»)" in w and "never get «payments»" in w for w in dry["warnings"]
        ), dry["warnings"]
        # proposed rules get the same check from lint_virtual_tag
        linted = await call(
            client, "lint_virtual_tag", {"rules": appended[-1:] + appended[-1:], "default_value": "other"}
        )
        assert [f["code"] for f in linted["rules"][1]["findings"]] == ["duplicate_rule"]
        linted = await call(client, "lint_virtual_tag", {"rules": widened[:1], "default_value": "other"})
        assert [f["code"] for f in linted["rules"][0]["findings"]] == ["already_allocated"]
        # two new conditions meaning the same: one finding, on the second (dropping both would lose it)
        in_list = {"key": "namespace", "cost_center": "Kubernetes", "op": "in", "values": ["checkout"]}
        twice = {"to": "checkout", "filter": {"any": [NAMESPACE_CHECKOUT, in_list]}}
        linted = await call(client, "lint_virtual_tag", {"rules": [twice], "default_value": "other"})
        [finding] = linted["rules"][0]["findings"]
        assert finding["message"].startswith("Condition Kubernetes.Namespace in [checkout] is already allocated")


async def test_values_differing_only_in_case_are_a_warning_naming_both(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        rules = [
            {"to": "Checkout", "filter": STAGING_ACCOUNTS},
            {"to": "checkout", "filter": NAMESPACE_CHECKOUT},
        ]
        linted = await call(client, "lint_virtual_tag", {"rules": rules, "default_value": "other"})
        assert linted["ok"] and linted["warnings"] == 1
        [finding] = linted["rules"][1]["findings"]
        assert finding["code"] == "case_variant_value" and finding["severity"] == "warning"
        assert "«checkout»" in finding["message"] and "«Checkout»" in finding["message"]
        # against a value the tag produces now: Team sends «checkout»; a new rule sends «Checkout»
        read = await call(client, "get_virtual_tag", {"tag": "Team", "include_filters": True})
        added = [*read["rules"], {"to": "Checkout", "filter": STAGING_ACCOUNTS}]
        dry = await call(client, "update_virtual_tag", {"tag": "Team", "rules": added, "dry_run": True})
        assert any("«Checkout» differs only in case from «checkout»" in w for w in dry["warnings"]), dry[
            "warnings"
        ]
        # and against the values a rule takes from another tag
        team_id = next(t["id"] for t in sb.account.virtual_tags.values() if t["name"] == "Team")
        rules = [
            {"to": {"key": team_id, "costCenter": "Virtual Tags"}, "filter": NAMESPACE_CHECKOUT},
            {"to": "CHECKOUT", "filter": STAGING_ACCOUNTS},
        ]
        linted = await call(client, "lint_virtual_tag", {"rules": rules, "default_value": "other"})
        [finding] = linted["rules"][1]["findings"]
        assert (
            "«CHECKOUT» differs only in case from «checkout» (rule 1's value, from tag «Team»)"
            in finding["message"]
        )
        # one spelling: no warning
        same = [{"to": "checkout", "filter": STAGING_ACCOUNTS}, {"to": "checkout", "filter": NAMESPACE_CHECKOUT}]
        linted = await call(client, "lint_virtual_tag", {"rules": same, "default_value": "other"})
        assert linted["warnings"] == 0


async def test_undo_says_the_target_is_exactly_as_it_was_before_the_change(tmp_path: Path) -> None:
    """The blind user's story ends with undo: the answer says plainly that «Team» is back as it was
    (compared with the recorded before-image, read back from Finout), for every kind of write."""
    async with demo(tmp_path) as (client, _sb):
        read = await call(client, "get_virtual_tag", {"tag": "Team", "include_filters": True})
        rules = read["rules"]
        rules[0]["filter"] = {"any": [rules[0]["filter"], STAGING_ACCOUNTS]}
        updated = await call(client, "update_virtual_tag", {"tag": "Team", "rules": rules})
        log = await call(client, "list_changes", {"tag": "Team"})
        assert log["changes"][0]["change_id"] == updated["change_id"]
        undone = await call(client, "undo_change", {"change_id": updated["change_id"]})
        assert f"«Team» is now exactly as it was before {updated['change_id']}" in " ".join(undone["notes"])
        assert not any("not exactly" in w for w in undone["warnings"])

        md = await call(
            client, "update_virtual_tag_metadata", {"tag": "Team", "values": {"checkout": {"groups": ["g1"]}}}
        )
        undone = await call(client, "undo_change", {"change_id": md["change_id"]})
        assert f"The metadata of «Team» is now exactly as it was before {md['change_id']}" in " ".join(
            undone["notes"]
        )

        deleted = await call(client, "delete_virtual_tag", {"tag": "Environment", "confirm_name": "Environment"})
        undone = await call(client, "undo_change", {"change_id": deleted["change_id"]})
        assert any(
            n.startswith(
                f"«Environment» is now exactly as it was before {deleted['change_id']} (recreated with a new id"
            )
            for n in undone["notes"]
        ), undone["notes"]

        created = await call(client, "create_virtual_tag", {"name": "Product", "rules": [CHECKOUT_RULE]})
        undone = await call(client, "undo_change", {"change_id": created["change_id"]})
        assert f"«Product» no longer exists, as before {created['change_id']}" in " ".join(undone["notes"])


async def test_undo_says_what_differs_when_the_tag_is_not_back_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer changes the tag right after the undo's PUT: the undo does not claim it is
    back as it was, and says what differs."""
    async with demo(tmp_path) as (client, sb):
        updated = await call(client, "update_virtual_tag", {"tag": "Environment", "default_value": "ours"})
        another_writer_after_each_put(monkeypatch, sb)
        undone = await call(client, "undo_change", {"change_id": updated["change_id"]})
        assert undone["status"] == "undone"
        assert not any("exactly as it was" in n for n in undone["notes"])
        [warning] = [w for w in undone["warnings"] if "not exactly as it was" in w]
        assert warning.startswith(f"«Environment» is not exactly as it was before {updated['change_id']}")
        assert "«someone-else»" in warning and "«untagged»" in warning


async def test_everything_else_can_take_another_tags_value_as_the_default(tmp_path: Path) -> None:
    """'checkout goes to Commerce, everything else takes whatever Team gives it': the default value
    can be another tag's value, as the account's own tags already do."""
    async with demo(tmp_path) as (client, sb):
        team = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Team")
        args = {
            "name": "Business line",
            "rules": [{"to": "Commerce", "filter": NAMESPACE_CHECKOUT}],
            "default_value": {"key": team["id"]},
        }
        dry = await call(client, "create_virtual_tag", {**args, "dry_run": True})
        assert dry["tag"]["default_value"] == f"value of tag {team['id']}" and writes(sb) == []
        created = await call(client, "create_virtual_tag", args)
        stored = sb.account.virtual_tags[created["tag"]["id"]]
        assert stored["defaultValue"] == {"key": team["id"], "costCenter": "Virtual Tags"}
        shown = await call(client, "get_virtual_tag", {"tag": "Business line"})
        assert shown["default_value_readable"] == f"value of tag «Team» ({team['id']})"
        # deleting Team now names this tag's default among the references
        message = await call_error(client, "delete_virtual_tag", {"tag": "Team", "confirm_name": "Team"})
        assert "«Business line» takes its default value from it" in message

        # a reference to a tag that does not exist is refused before anything is sent, on create and update
        sent = len(writes(sb))
        bad = await call_error(
            client, "create_virtual_tag", {**args, "name": "Other", "default_value": {"key": "Team"}}
        )
        assert "The default value takes its value from tag 'Team', which does not exist" in bad
        assert f"{team['id']} (Team)" in bad  # did you mean: the id of the tag named Team
        bad = await call_error(
            client, "update_virtual_tag", {"tag": "Business line", "default_value": {"key": "nope"}}
        )
        assert "The default value takes its value from tag 'nope'" in bad and len(writes(sb)) == sent

        # a tag's id given as a plain value becomes a literal value: lint says so
        report = await call(
            client,
            "lint_virtual_tag",
            {"rules": [{"to": "Commerce", "filter": NAMESPACE_CHECKOUT}], "default_value": team["id"]},
        )
    (finding,) = [f for f in report["findings"] if f["code"] == "tag_id_as_value"]
    assert finding["severity"] == "warning" and "{'key':" in finding["message"] and "«Team»" in finding["message"]


async def test_a_create_dry_run_shows_each_rule_readable_and_the_values_it_produces(tmp_path: Path) -> None:
    rules = [
        {"to": "Commerce", "filter": NAMESPACE_CHECKOUT},
        {"to": "Staging", "filter": STAGING_ACCOUNTS},
    ]
    async with demo(tmp_path) as (client, sb):
        dry = await call(
            client,
            "create_virtual_tag",
            {"name": "Line", "rules": rules, "default_value": "other", "dry_run": True},
        )
        assert writes(sb) == []
    diff = dry["diff"]
    assert [(r["change"], r["after_index"], r["after"]) for r in diff["rules"]] == [
        ("added", 1, "Kubernetes.Namespace = checkout → Commerce"),
        ("added", 2, "AWS.Account Name in [staging] → Staging"),
    ]
    assert set(diff["values_added"]) == {"Commerce", "Staging", "other"} and "2 added" in diff["summary"]


async def test_a_new_tag_named_like_an_existing_one_is_a_warning_naming_it(tmp_path: Path) -> None:
    rules = [{"to": "Commerce", "filter": NAMESPACE_CHECKOUT}]
    async with demo(tmp_path) as (client, sb):
        bu = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Business Unit")
        close = await call(
            client, "create_virtual_tag", {"name": "Business line", "rules": rules, "dry_run": True}
        )
        apart = await call(client, "create_virtual_tag", {"name": "Product", "rules": rules, "dry_run": True})
    (warning,) = [w for w in close["warnings"] if "similar name" in w]
    assert "«Business Unit»" in warning and bu["id"] in warning and "update_virtual_tag" in warning
    assert not any("similar name" in w for w in apart["warnings"])


async def test_an_applied_write_says_what_its_expected_version_is_for(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        created = await call(
            client,
            "create_virtual_tag",
            {"name": "Line", "rules": [{"to": "Commerce", "filter": NAMESPACE_CHECKOUT}]},
        )
        updated = await call(
            client,
            "update_virtual_tag",
            {"tag": "Line", "default_value": "other", "expected_version": created["expected_version"]},
        )
    for result in (created, updated):
        assert result["expected_version"] and any("next update_virtual_tag" in n for n in result["notes"])


async def test_list_changes_explains_why_its_actor_differs_from_finouts_updated_by(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        await call(
            client, "create_virtual_tag", {"name": "Line", "rules": [{"to": "C", "filter": NAMESPACE_CHECKOUT}]}
        )
        log = await call(client, "list_changes", {})
        shown = await call(client, "get_virtual_tag", {"tag": "Line"})
    assert log["changes"][0]["actor"] != shown["updated_by"] == "API"
    assert any("updated_by 'API'" in n for n in log["notes"])


async def test_an_impact_estimate_names_a_default_that_is_another_tags_value(tmp_path: Path) -> None:
    """The rest goes to Team's value, not to "(no value)", and the estimate says it is not split."""
    async with demo(tmp_path) as (client, sb):
        team = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Team")
        dry = await call(
            client,
            "create_virtual_tag",
            {
                "name": "Cost owner",
                "rules": [{"to": "Payments team", "filter": NAMESPACE_CHECKOUT}],
                "default_value": {"key": team["id"]},
                "dry_run": True,
                "estimate_impact": True,
            },
        )
    impact = dry["impact"]
    label = f"value of tag «Team» ({team['id']})"
    assert impact["default_value"] == label and "(no value)" not in {v["value"] for v in impact["values"]}
    rest = next(v for v in impact["values"] if v["value"] == label)
    assert rest["amount"] == pytest.approx(impact["total"] - impact["rules"][0]["amount"], abs=0.01)
    assert any("not split by that tag's values" in n for n in impact["notes"])


async def test_an_undo_refused_for_a_later_edit_names_a_reference_default_readably(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        team = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Team")
        first = await call(client, "update_virtual_tag", {"tag": "Environment", "default_value": "one"})
        await call(client, "update_virtual_tag", {"tag": "Environment", "default_value": {"key": team["id"]}})
        message = await call_error(client, "undo_change", {"change_id": first["change_id"]})
    assert f"default value is now «value of tag {team['id']}»" in message and "'key'" not in message
