"""MegaBill catalogue tools and resources through the MCP client."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, ResourceTemplateReference

from tests.support import call, call_error, demo


async def test_key_search_ranks_exact_first_and_groups_by_cost_center(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        out = await call(client, "list_megabill_keys", {"search": "namespace"})
        first_cc, first_keys = next(iter(out["cost_centers"].items()))
        assert (first_cc, first_keys[0]["key"]) == ("Kubernetes", "namespace")
        only = await call(client, "list_megabill_keys", {"cost_center": "kubernetes", "limit": 500})
        assert set(only["cost_centers"]) == {"Kubernetes"}
        assert any(k["key"].startswith("pl_") for k in only["cost_centers"]["Kubernetes"])
        small = await call(client, "list_megabill_keys", {"limit": 3})
        assert small["shown"] == 3 and small["truncated"] and small["total"] >= 60


async def test_values_by_display_name_and_search(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        out = await call(client, "list_key_values", {"key": "Account Name"})
        assert out["key"] == "aws_account_name" and out["cost_center"] == "AWS"
        assert {"prod-eu", "prod-us"} <= set(out["values"])
        hits = await call(client, "list_key_values", {"key": "aws_account_name", "search": "prod"})
        assert hits["values"] and all("prod" in v for v in hits["values"][:2])
        calls = [r for r in sb.request_log if "/values/" in r.raw_path]
        assert len(calls) == 1  # the second call was served from the cache


async def test_ambiguous_key_lists_every_candidate(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        message = await call_error(client, "list_key_values", {"key": "Region"})
        assert "AWS" in message and "GCP" in message and "cost_center" in message
        ok = await call(client, "list_key_values", {"key": "Region", "cost_center": "GCP"})
        assert ok["cost_center"] == "GCP"


async def test_opaque_base64_key_with_slash_reaches_its_values(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        keys = await call(client, "list_megabill_keys", {"cost_center": "Kubernetes", "limit": 500})
        opaque = [k for k in keys["cost_centers"]["Kubernetes"] if "/" in k["key"]]
        assert opaque, "the demo account has a base64 key containing '/'"
        out = await call(client, "list_key_values", {"key": opaque[0]["key"], "cost_center": "Kubernetes"})
        assert out["values"]
        assert any("%2F" in r.raw_path for r in sb.request_log if "/values/" in r.raw_path)


async def test_resources_and_completions(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {
            "finout://views",
            "finout://megabill/keys",
            "finout://virtual-tags",
            "finout://guide/filters",
        } <= listed
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert {"finout://megabill/values/{cost_center}/{key}", "finout://virtual-tags/{tag_id}"} <= templates

        guide = (await client.read_resource("finout://guide/filters")).contents[0]
        assert "oneOf" in guide.text and '"any"' in guide.text  # type: ignore[union-attr]
        values = json.loads(
            (await client.read_resource("finout://megabill/values/AWS/aws_account_name")).contents[0].text
        )  # type: ignore[union-attr]
        assert "prod-eu" in values["values"]
        spaced = await client.read_resource("finout://megabill/keys/Custom%20Cost")
        assert json.loads(spaced.contents[0].text)  # type: ignore[union-attr]
        tags = json.loads((await client.read_resource("finout://virtual-tags")).contents[0].text)  # type: ignore[union-attr]
        one = json.loads((await client.read_resource(f"finout://virtual-tags/{tags[0]['id']}")).contents[0].text)  # type: ignore[union-attr]
        assert one["name"] == tags[0]["name"]

        ref = ResourceTemplateReference(type="ref/resource", uri="finout://megabill/values/{cost_center}/{key}")
        cc = await client.complete(ref, {"name": "cost_center", "value": "Ku"})
        assert cc.completion.values == ["Kubernetes"]
        keys = await client.complete(
            ref, {"name": "key", "value": "pl_"}, context_arguments={"cost_center": "Kubernetes"}
        )
        assert keys.completion.values and all(v.startswith("pl_") for v in keys.completion.values)


async def test_prompts_lead_through_the_tools(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        names = {p.name for p in (await client.list_prompts()).prompts}
        assert names == {"monthly_cost_review", "find_savings", "allocate_costs", "investigate_spike"}
        got = await client.get_prompt(
            "allocate_costs", {"tag_name": "Team", "allocation": "prod accounts to Checkout"}
        )
        body = got.messages[0].content.text  # type: ignore[union-attr]
        assert body.index("compose_filter") < body.index("dry_run=true") < body.index("change_id")
        review = await client.get_prompt("monthly_cost_review", {"month": "2026-10"})
        assert "query_view_costs" in review.messages[0].content.text  # type: ignore[union-attr]


async def test_instructions_are_sent_on_initialize(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        assert client.instructions and "dry_run" in client.instructions and "undo_change" in client.instructions


async def test_prompt_mistakes_get_a_clear_error_and_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with demo(tmp_path) as (client, _sb):
        with pytest.raises(MCPError) as unknown:
            await client.get_prompt("monthly_review")
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("allocate_costs", {"tag_name": "Team"})
        with pytest.raises(MCPError) as extra:
            await client.get_prompt("investigate_spike", {"view": "Costs by team", "date": "2026-11-02"})
        with pytest.raises(MCPError) as bad_value:
            await client.get_prompt("find_savings", {"min_yearly_savings": "lots"})
        ok = await client.get_prompt("find_savings", {"min_yearly_savings": "100"})  # strings are converted
    assert "at least 100 per year" in ok.messages[0].content.text  # type: ignore[union-attr]

    for err in (unknown, missing, extra, bad_value):
        assert err.value.error.code == INVALID_PARAMS, err.value.error
        assert "Internal" not in err.value.error.message
    assert "monthly_cost_review" in unknown.value.error.message  # the prompts that exist
    assert "allocation" in missing.value.error.message and "tag_name" not in missing.value.error.message
    assert "date" in extra.value.error.message and "day" in extra.value.error.message  # what it takes
    assert "min_yearly_savings" in bad_value.value.error.message and "number" in bad_value.value.error.message
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


async def test_every_condition_quoted_in_the_instructions_composes(tmp_path: Path) -> None:
    """A condition the instructions show is one the model can send as is (no 'did you mean' on it)."""
    import re

    async with demo(tmp_path) as (client, _sb):
        quoted = re.findall(r"\{\"key\"[^{}]*\}", client.instructions or "")
        assert quoted
        for condition in quoted:
            composed = await call(client, "compose_filter", {"intent": json.loads(condition)})
            assert composed["ok"], (condition, composed)


async def test_a_key_written_the_way_the_server_writes_keys_back_is_understood(tmp_path: Path) -> None:
    """Readable filters say 'Kubernetes.Namespace = checkout' and did-you-means say
    'AWS.aws_account_name (Account Name)': a model that copies either form back is understood."""
    forms = {
        "Kubernetes.Namespace": ("Kubernetes", "namespace"),
        "Kubernetes.namespace": ("Kubernetes", "namespace"),
        "Global.cost_center_type": ("Global", "cost_center_type"),
        "Global.Cost Center Type": ("Global", "cost_center_type"),
        "AWS.aws_account_name (Account Name)": ("AWS", "aws_account_name"),
    }
    async with demo(tmp_path) as (client, _sb):
        for form, (cc, key) in forms.items():
            out = await call(client, "compose_filter", {"intent": {"key": form, "op": "exists"}})
            assert out["ok"] and (out["filter"]["costCenter"], out["filter"]["key"]) == (cc, key), (form, out)
            readable = out["readable"].split(" exists")[0]
            again = await call(client, "compose_filter", {"intent": {"key": readable, "op": "exists"}})
            assert again["filter"] == out["filter"]  # the readable form round-trips
        values = await call(client, "list_key_values", {"key": "Kubernetes.Namespace"})
        assert values["key"] == "namespace" and "checkout" in values["values"]
        grouped = await call(
            client, "query_costs", {"group_by": ["Kubernetes.Namespace"], "period": "last_7_days"}
        )
        assert grouped["query"]["group_by"] == ["Kubernetes.namespace (Namespace)"]
        # the cost center before the dot must agree with cost_center when both are given
        clash = await call(
            client,
            "compose_filter",
            {"intent": {"key": "Kubernetes.namespace", "cost_center": "AWS", "op": "exists"}},
        )
    assert not clash["ok"] and clash["findings"][0]["code"] == "unknown_key"
