"""query_costs and the impact estimates through the MCP client, against the demo sandbox.

Expected figures are computed from the sandbox's cost table (its lines and daily costs), never
copied from the tool's output.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp.types import CallToolResult

from finout_mcp.sandbox import Fault, Sandbox
from finout_mcp.sandbox.costs import Line
from tests.support import TODAY, call, call_error, demo, text


def table_sum(sb: Sandbox, first: dt.date, last: dt.date, keep: Callable[[Any], bool]) -> float:
    """Unblended cost of every cost-table row (with its tags' values) that ``keep`` accepts."""
    total = []
    day = first
    while day <= last:
        for line in sb.account.costs.lines:
            if keep(sb.account.row(line, day)):
                total.append(sb.account.costs.cost(line, day))
        day += dt.timedelta(days=1)
    return math.fsum(total)


def attr(cc: str, key: str, value: str) -> Callable[[Any], bool]:
    return lambda row: row.get((cc, key)) == value


def v2_requests(sb: Sandbox, route_end: str) -> int:
    return sum(1 for r in sb.request_log if r.raw_path.startswith("/v2/") and r.raw_path.endswith(route_end))


async def test_what_did_the_checkout_namespace_cost_each_month(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        progress: list[tuple[float, float | None, str | None]] = []

        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            progress.append((p, total, message))

        result: CallToolResult = await client.call_tool(
            "query_costs",
            {"filter": {"key": "namespace", "op": "=", "value": "checkout"}, "period": "last_12_months"},
            progress_callback=on_progress,
        )
        assert not result.is_error
        out = result.structured_content
        assert out is not None
        assert (
            out["first_day"] == "2025-11-01" and out["last_day"] == "2026-10-31" and out["granularity"] == "month"
        )
        assert [t["period"] for t in out["timeline"]][:2] == ["2025-11", "2025-12"] and len(out["timeline"]) == 12
        checkout = attr("Kubernetes", "namespace", "checkout")
        for row in out["timeline"]:
            year, month = map(int, row["period"].split("-"))
            first = dt.date(year, month, 1)
            last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
            assert row["total"] == pytest.approx(table_sum(sb, first, last, checkout), abs=0.01)
        # 12 months in queries of at most 60 days that never cut a month (only Jan+Feb fit together):
        # 11 queries, answered in parallel, with progress on the way
        assert v2_requests(sb, "/generate-query") == 11
        runs = out["provenance"]["queries"]
        assert len(runs) == 11 and not any(q["reused"] for q in runs)
        assert all(dt.date.fromisoformat(q["first_day"]).day == 1 for q in runs)
        assert all((dt.date.fromisoformat(q["last_day"]) + dt.timedelta(days=1)).day == 1 for q in runs)
        assert progress and progress[-1][0] == progress[-1][1] == 11
        assert out["query"]["v2_filter"] == {
            "costCenter": "Kubernetes",
            "key": "namespace",
            "type": "k8s_namespace",
            "operator": "is",
            "value": ["checkout"],
        }
        assert out["provenance"]["daily_queries_used"] == 11 and out["provenance"]["daily_queries_cap"] == 10_000
        assert any("11 of 10,000" in n for n in out["notes"])


async def test_why_did_rds_spike_on_the_23rd(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        out = await call(
            client,
            "query_costs",
            {
                "filter": {"key": "service", "cost_center": "AWS", "op": "=", "value": "AmazonRDS"},
                "group_by": ["Account Name"],
                "start": "2026-11-23",
                "end": "2026-11-23",
                "compare_start": "2026-11-22",
            },
        )
        day, before = dt.date(2026, 11, 23), dt.date(2026, 11, 22)
        rds = attr("AWS", "service", "AmazonRDS")

        def rds_in(account: str) -> Callable[[Any], bool]:
            return lambda row: rds(row) and row.get(("AWS", "aws_account_name")) == account

        assert out["total"] == pytest.approx(table_sum(sb, day, day, rds), abs=0.01)
        assert out["previous_total"] == pytest.approx(table_sum(sb, before, before, rds), abs=0.01)
        top = out["biggest_changes"][0]
        expected = table_sum(sb, day, day, rds_in("prod-us")) - table_sum(sb, before, before, rds_in("prod-us"))
        assert top["name"] == "prod-us" and top["change_abs"] == pytest.approx(expected, abs=0.01)
        assert top["change_abs"] > 0.5 * (out["change_abs"])  # prod-us explains the jump


async def test_totals_equal_the_same_sum_from_the_v1_view(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        view = await call(
            client, "query_view_costs", {"view": "Kubernetes by namespace", "period": "last_month", "top_n": 50}
        )
        v2 = await call(
            client,
            "query_costs",
            {
                "filter": {"key": "cost_center_type", "op": "=", "value": "Kubernetes"},
                "group_by": ["namespace"],
                "period": "last_month",
                "top_n": 50,
            },
        )
        assert v2["total"] == pytest.approx(view["total"], abs=0.05)
        assert {s["name"]: s["total"] for s in v2["series"]} == pytest.approx(
            {s["name"]: s["total"] for s in view["series"]}, abs=0.01
        )
        assert [s["share_pct"] for s in v2["series"]] == [s["share_pct"] for s in view["series"]]
        assert v2["view"] is None and v2["period"] == view["period"]


async def test_the_same_question_reuses_finouts_stored_results(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        # "Team" alone is ambiguous (AWS key `team`, GCP's "team" label, the virtual tag Team): named exactly
        args = {"group_by": ["Virtual Tags:Team"], "period": "last_30_days"}
        first = await call(client, "query_costs", args)
        generated = v2_requests(sb, "/generate-query")
        polls = v2_requests(sb, "/status")
        again = await call(client, "query_costs", args)
        assert v2_requests(sb, "/generate-query") == generated and v2_requests(sb, "/status") == polls
        assert again["provenance"]["queries"][0]["reused"] is True
        assert again["provenance"]["queries"][0]["query_id"] == first["provenance"]["queries"][0]["query_id"]
        assert again["series"] == first["series"]
        # Once Finout no longer has them (expired), the question is asked anew.
        for q in sb.v2.queries.values():
            q.created -= 25 * 3600
        third = await call(client, "query_costs", args)
        assert v2_requests(sb, "/generate-query") == generated + 1
        assert third["provenance"]["queries"][0]["reused"] is False and third["total"] == first["total"]


async def test_usage_and_other_measurements(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        out = await call(
            client,
            "query_costs",
            {
                "filter": {"key": "warehouse", "op": "exists"},
                "measurement": "usageAmount",
                "period": "last_7_days",
            },
        )
        first, last = TODAY - dt.timedelta(days=7), TODAY - dt.timedelta(days=1)
        lines: dict[int, Line] = {ln.id: ln for ln in sb.account.costs.lines}
        credits = math.fsum(
            sb.account.costs.cost(ln, first + dt.timedelta(days=d)) / ln.unit_price
            for d in range(7)
            for ln in lines.values()
            if ("Snowflake", "warehouse") in ln.attrs
        )
        assert out["currency"] == "Credits" and out["total"] == pytest.approx(credits, abs=0.01)
        assert out["last_day"] == last.isoformat()


async def test_mistakes_get_errors_that_name_the_fix(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        message = await call_error(client, "query_costs", {"group_by": ["namespac"]})
        assert "namespace" in message and "list_megabill_keys" in message
        cond = {"key": "service", "cost_center": "AWS", "op": "=", "value": "AmazonEC2"}
        many = {"any": [{**cond, "value": f"svc-{i}"} for i in range(31)]}
        message = await call_error(client, "query_costs", {"filter": many})
        assert "31 conditions" in message and "at most 30" in message
        message = await call_error(client, "query_costs", {"filter": {"key": "nope-key", "op": "exists"}})
        assert "nope-key" in message
        message = await call_error(client, "query_costs", {"group_by": ["Service"]})
        assert "ambiguous" in message and "'AWS:service'" in message
        out = await call(client, "query_costs", {"group_by": ["AWS:Service"], "period": "last_7_days"})
        assert out["query"]["group_by"] == ["AWS.service (Service)"] and "AmazonEC2" in [
            s["name"] for s in out["series"]
        ]


# ------------------------------------------------------------------ impact estimates

RULES = [
    {"to": "payments", "filter": {"key": "Account Name", "op": "in", "values": ["prod-us"]}},
    {"to": "k8s", "filter": {"key": "cost_center_type", "op": "=", "value": "Kubernetes"}},
    {"to": "prod", "filter": {"key": "env", "cost_center": "AWS", "op": "=", "value": "production"}},
]


async def test_impact_estimate_equals_the_allocation_after_creating_the_tag(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        dry = await call(
            client,
            "create_virtual_tag",
            {
                "name": "Allocation",
                "rules": RULES,
                "default_value": "other",
                "dry_run": True,
                "estimate_impact": True,
            },
        )
        impact = dry["impact"]
        assert dry["status"] == "dry_run" and impact["complete"] is True and impact["queries"] == 4
        assert dry["body"] is None  # include_body=false (the default) is kept with estimate_impact=true
        # rule 3 ("prod") only gets production costs that rule 1 did not take: prod-eu and data-prod
        first, last = TODAY - dt.timedelta(days=30), TODAY - dt.timedelta(days=1)
        prod_not_us = table_sum(
            sb,
            first,
            last,
            lambda row: (
                row.get(("AWS", "env")) == "production" and row.get(("AWS", "aws_account_name")) != "prod-us"
            ),
        )
        assert impact["rules"][2]["amount"] == pytest.approx(prod_not_us, abs=0.01)
        assert [r["conditions"] for r in impact["rules"]] == [1, 1, 1]  # each rule's own, not its query's
        await call(client, "create_virtual_tag", {"name": "Allocation", "rules": RULES, "default_value": "other"})
        allocated = await call(client, "query_costs", {"group_by": ["Allocation"], "period": "last_30_days"})
        estimated = {v["value"]: v["amount"] for v in impact["values"]}
        assert {s["name"]: s["total"] for s in allocated["series"]} == pytest.approx(estimated, abs=0.02)
        assert impact["total"] == pytest.approx(allocated["total"], abs=0.01)


async def test_an_update_shows_dollars_moving_between_values(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        await call(client, "create_virtual_tag", {"name": "Allocation", "rules": RULES, "default_value": "other"})
        swapped = [{**RULES[2], "to": "prod"}, RULES[0], RULES[1]]  # "prod" now wins over "payments"
        dry = await call(
            client,
            "update_virtual_tag",
            {"tag": "Allocation", "rules": swapped, "dry_run": True, "estimate_impact": True},
        )
        values = {v["value"]: v for v in dry["impact"]["values"]}
        first, last = TODAY - dt.timedelta(days=30), TODAY - dt.timedelta(days=1)
        prod_us = table_sum(sb, first, last, attr("AWS", "aws_account_name", "prod-us"))
        assert values["payments"]["change"] == pytest.approx(-prod_us, abs=0.02)
        assert values["prod"]["change"] == pytest.approx(prod_us, abs=0.02)
        assert values["k8s"]["change"] == pytest.approx(0, abs=0.02)
        assert "would move between values" in dry["impact"]["notes"][0]
        # include_body=false (the default): no raw body, no raw filters, even though the estimate read them
        assert dry["body"] is None
        assert dry["diff"]["rules"] and all(
            r["before_filters"] is None and r["after_filters"] is None for r in dry["diff"]["rules"]
        )
        shown = await call(
            client,
            "update_virtual_tag",
            {
                "tag": "Allocation",
                "rules": swapped,
                "dry_run": True,
                "estimate_impact": True,
                "include_body": True,
            },
        )
        assert shown["body"]["rules"][0]["to"] == "prod" and shown["diff"]["rules"][0]["after_filters"]
        # nothing was written
        owner = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Allocation")
        assert owner["rules"][0]["to"] == "payments"


def _conditions(node: dict[str, Any]) -> int:
    groups = node.get("AND", node.get("OR"))
    return 1 if groups is None else sum(_conditions(c) for c in groups)


async def test_impact_counts_each_rules_own_conditions(tmp_path: Path) -> None:
    """The estimate's per-rule "conditions" is what the user sees in that rule (as get_virtual_tag reads
    it), not the running total of the query that excludes the rules above."""
    async with demo(tmp_path) as (client, _sb):
        read = await call(client, "get_virtual_tag", {"tag": "Team", "include_filters": True})
        rules = read["rules"]
        staging = {"key": "Account Name", "cost_center": "AWS", "op": "in", "values": ["staging"]}
        rules[0]["filter"] = {"any": [rules[0]["filter"], staging]}
        dry = await call(
            client,
            "update_virtual_tag",
            {"tag": "Team", "rules": rules, "dry_run": True, "estimate_impact": True, "include_body": True},
        )
        own = [_conditions(r["filters"]) for r in dry["body"]["rules"]]
        assert [r["conditions"] for r in dry["impact"]["rules"]] == own
        assert own[0] == 3 and sorted(own) != own  # rule 1 gained a condition; the counts do not accumulate


async def test_a_tag_too_large_to_estimate_says_so(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        rules = [
            {
                "to": f"v{i}",
                "filter": {"key": "service", "cost_center": "AWS", "op": "in", "values": [f"s{i}", "x"]},
            }
            for i in range(32)
        ]
        dry = await call(
            client,
            "create_virtual_tag",
            {"name": "Huge", "rules": rules, "dry_run": True, "estimate_impact": True},
        )
        impact = dry["impact"]
        assert impact["complete"] is False and impact["default_amount"] is None
        assert impact["rules"][29]["amount"] is not None and impact["rules"][30]["amount"] is None
        assert any("Too large to estimate from rule 31" in n for n in impact["notes"])


async def test_estimate_impact_needs_a_dry_run(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        message = await call_error(
            client, "create_virtual_tag", {"name": "Allocation", "rules": RULES, "estimate_impact": True}
        )
        assert "dry_run=true" in message
        assert not any(t["name"] == "Allocation" for t in sb.account.virtual_tags.values())


# ------------------------------------------------------------------ faults on the v2 routes

GENERATE = "POST /v2/data/cost-usage/generate-query"
STATUS = "GET /v2/data/cost-usage/{queryId}/status"
RESULTS = "GET /v2/data/cost-usage/{queryId}/results"
V2_KEYS = "GET /v2/query-language/keys"


@pytest.mark.parametrize(
    ("route", "fault", "retried"),
    [
        (GENERATE, Fault(503), True),
        (GENERATE, Fault(429), True),
        (STATUS, Fault(429), True),
        (STATUS, Fault(drop=True), True),
        (RESULTS, Fault(502, body="html"), True),
        (V2_KEYS, Fault(504), True),
        (GENERATE, Fault(500), False),
        (STATUS, Fault(401), False),
        (RESULTS, Fault(body="truncated"), False),
        (RESULTS, Fault(body="empty"), False),
    ],
)
async def test_faults_on_v2_routes_are_retried_or_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, route: str, fault: Fault, retried: bool
) -> None:
    monkeypatch.setattr("finout_mcp.api.client_v2.RATE_LIMIT_PAUSE_S", 0.0)
    monkeypatch.setattr("finout_mcp.api.client.BACKOFF_BASE_S", 0.001)
    async with demo(tmp_path) as (client, sb):
        sb.faults.script(route, [fault])
        result = await client.call_tool("query_costs", {"group_by": ["namespace"], "period": "last_7_days"})
        message = text(result)
        if retried:
            assert not result.is_error, message
            assert result.structured_content is not None and result.structured_content["total"] > 0
        else:
            assert result.is_error and "Traceback" not in message
            assert "retry" in message.lower() or "check" in message.lower()
            assert "demo-secret" not in message
        assert sb.faults.pending() == 0


async def test_without_a_v2_url_the_error_names_the_variable(tmp_path: Path) -> None:
    from mcp import Client

    from finout_mcp.config import Settings
    from finout_mcp.server.app import build_server

    settings = Settings(demo=True, state_dir=tmp_path, api_url="http://proxy.invalid/finout")
    async with Client(build_server(settings, sandbox=Sandbox(seed=7, today=TODAY), today=lambda: TODAY)) as client:
        message = await call_error(client, "query_costs", {})
    assert "FINOUT_API_V2_URL" in message and "Traceback" not in message


async def test_negations_become_v2_operators_with_types(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        intent = {
            "all": [
                {"key": "cost_center_type", "op": "=", "value": "AWS"},
                {
                    "not": {
                        "any": [
                            {"key": "Account Name", "op": "=", "value": "prod-us"},
                            {"key": "team", "cost_center": "AWS", "op": "exists"},
                        ]
                    }
                },
            ]
        }
        out = await call(client, "query_costs", {"filter": intent, "period": "last_7_days"})
        assert out["query"]["v2_filter"] == {
            "AND": [
                {
                    "costCenter": "Global",
                    "key": "cost_center_type",
                    "type": "billing_dimension",
                    "operator": "is",
                    "value": ["AWS"],
                },
                {
                    "costCenter": "AWS",
                    "key": "aws_account_name",
                    "type": "billing_dimension",
                    "operator": "notIs",
                    "value": ["prod-us"],
                },
                {"costCenter": "AWS", "key": "team", "type": "tag", "operator": "notExists"},
            ]
        }
        # every AWS line carries a team tag in the demo account, so nothing is left
        assert out["total"] == 0
        first, last = TODAY - dt.timedelta(days=7), TODAY - dt.timedelta(days=1)
        no_prod_us = await call(
            client,
            "query_costs",
            {
                "filter": {"all": [intent["all"][0], {"key": "Account Name", "op": "!=", "value": "prod-us"}]},
                "period": "last_7_days",
            },
        )
        expected = table_sum(
            sb,
            first,
            last,
            lambda r: (
                r.get(("Global", "cost_center_type")) == "AWS" and r.get(("AWS", "aws_account_name")) != "prod-us"
            ),
        )
        assert no_prod_us["total"] == pytest.approx(expected, abs=0.01)


# ------------------------------------------------------------------ group-by keys that carry values


async def test_why_did_ec2_spike_down_to_the_instances(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, sb):
        ec2 = {"key": "service", "cost_center": "AWS", "op": "=", "value": "AmazonEC2"}
        args = {"filter": ec2, "group_by": ["Resource ID"], "period": "last_7_days", "top_n": 50}
        out = await call(client, "query_costs", args)
        first, last = dt.date.fromisoformat(out["first_day"]), dt.date.fromisoformat(out["last_day"])
        names = {s["name"]: s for s in out["series"]}
        assert "(no value)" not in names and not any("no value on" in n for n in out["notes"])
        instances = {
            line.attrs[("AWS", "aws_resource_id")]
            for line in sb.account.costs.lines
            if "AmazonEC2" in line.attrs.values()
        }
        assert set(names) - {"Total"} == instances and len(instances) > 3
        some = sorted(instances)[0]
        assert names[some]["total"] == pytest.approx(
            table_sum(sb, first, last, attr("AWS", "aws_resource_id", some)), abs=0.01
        )
        for key in ("Instance Type", "Usage Type", "Operation", "Charge Type"):
            out = await call(client, "query_costs", {**args, "group_by": [key]})
            assert "(no value)" not in {s["name"] for s in out["series"]}, key


async def test_a_group_by_key_without_values_says_so(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        k8s = {"key": "cost_center_type", "op": "=", "value": "Kubernetes"}
        out = await call(
            client, "query_costs", {"filter": k8s, "group_by": ["Usage Type"], "period": "last_7_days"}
        )
        note = next(n for n in out["notes"] if "no value on" in n)
        assert note.startswith("AWS.aws_usage_type (Usage Type): no value on 100 % of the matched cost")
        assert "not set on these costs" in note
        out = await call(client, "query_costs", {"group_by": ["namespace"], "period": "last_7_days"})
        assert any("Kubernetes.namespace" in n and "no value on" in n for n in out["notes"])
        out = await call(
            client, "query_costs", {"filter": k8s, "group_by": ["namespace"], "period": "last_7_days"}
        )
        assert not any("no value on" in n for n in out["notes"])


async def test_an_ambiguous_group_by_names_the_colon_forms_or_follows_the_filter(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client, _sb):
        message = await call_error(client, "query_costs", {"group_by": ["Region"], "period": "last_7_days"})
        assert "ambiguous" in message and "'AWS:region'" in message and "'GCP:" in message
        assert "Set cost_center" not in message
        aws = {"key": "service", "cost_center": "AWS", "op": "=", "value": "AmazonEC2"}
        out = await call(client, "query_costs", {"filter": aws, "group_by": ["Region"], "period": "last_7_days"})
        assert out["query"]["group_by"] == ["AWS.region (Region)"]
        gcp = {"key": "cost_center_type", "op": "=", "value": "GCP"}
        out = await call(client, "query_costs", {"filter": gcp, "group_by": ["Region"], "period": "last_7_days"})
        assert out["query"]["group_by"][0].startswith("GCP.")


async def test_a_filter_on_one_cost_center_does_not_settle_a_name_a_virtual_tag_also_has(tmp_path: Path) -> None:
    """'Team' under a filter on AWS accounts: AWS's tag `team` or the virtual tag Team (which spans
    every cost center) give different answers, so the server asks instead of picking AWS.team."""
    prod = {"key": "Account Name", "op": "in", "values": ["prod-eu", "prod-us"]}
    async with demo(tmp_path) as (client, sb):
        team = next(t for t in sb.account.virtual_tags.values() if t["name"] == "Team")
        message = await call_error(
            client, "query_costs", {"filter": prod, "group_by": ["Team"], "period": "last_7_days"}
        )
        by_tag = await call(
            client,
            "query_costs",
            {"filter": prod, "group_by": [f"Virtual Tags:{team['id']}"], "period": "last_7_days"},
        )
        by_key = await call(
            client, "query_costs", {"filter": prod, "group_by": ["AWS:team"], "period": "last_7_days"}
        )
    assert "ambiguous" in message and "'AWS:team'" in message and f"'Virtual Tags:{team['id']}'" in message
    assert "GCP" not in message  # the filter still rules out the other cost centers' keys
    assert {s["name"] for s in by_tag["series"]} != {s["name"] for s in by_key["series"]}  # it mattered


async def test_the_daily_query_count_is_not_reset_by_a_restart(tmp_path: Path) -> None:
    args = {"group_by": ["namespace"], "period": "last_7_days"}
    async with demo(tmp_path) as (client, _sb):
        out = await call(client, "query_costs", args)
        assert out["provenance"]["daily_queries_used"] == 1
    # the server restarts on the same state dir (FINOUT_MCP_STATE_DIR): today's count goes on
    async with demo(tmp_path) as (client, _sb):
        out = await call(client, "query_costs", {**args, "period": "last_30_days"})
        assert out["provenance"]["daily_queries_used"] == 2 and any("2 of 10,000" in n for n in out["notes"])


async def test_breakdown_series_gives_each_groups_day_by_day_cost(tmp_path: Path) -> None:
    """A day-by-day drill-down per group, as query_view_costs gives per series, within 8 KB."""
    first, last = dt.date(2026, 11, 9), dt.date(2026, 11, 24)
    async with demo(tmp_path) as (client, sb):
        result = await client.call_tool(
            "query_costs",
            {
                "filter": {"key": "service", "cost_center": "AWS", "op": "=", "value": "AmazonRDS"},
                "group_by": ["Account Name"],
                "start": first.isoformat(),
                "end": last.isoformat(),
                "granularity": "day",
                "breakdown_series": True,
            },
        )
        assert not result.is_error, text(result)
        out = result.structured_content
        assert out is not None and len(text(result).encode()) <= 8 * 1024
        wide_result = await client.call_tool(
            "query_costs",
            {"group_by": ["namespace"], "period": "last_90_days", "granularity": "day", "breakdown_series": True},
        )
        wide = wide_result.structured_content
        assert wide is not None and len(text(wide_result).encode()) <= 8 * 1024
    rds = attr("AWS", "service", "AmazonRDS")
    accounts = [s["name"] for s in out["series"]]
    assert [row["period"] for row in out["timeline"]] == [
        (first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)
    ]
    for row in out["timeline"]:
        day = dt.date.fromisoformat(row["period"])
        for account in accounts:

            def rds_in(r: Any, account: str = account) -> bool:
                return rds(r) and r.get(("AWS", "aws_account_name")) == account

            assert row["top"].get(account, 0.0) == pytest.approx(table_sum(sb, day, day, rds_in), abs=0.01)
    # A breakdown too large for 8 KB is cut, and the notes say how to get it.
    assert any("breakdown" in n and "shorter range" in n for n in wide["notes"]), wide["notes"]
