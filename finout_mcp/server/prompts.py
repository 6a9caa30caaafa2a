"""Prompts that lead an assistant through the right tools, in order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from mcp.server import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from mcp.types import Prompt as MCPPrompt
from pydantic import Field, ValidationError

from finout_mcp.services.fencing import fence


def register(server: MCPServer) -> None:
    @server.prompt(title="Monthly cost review")
    def monthly_cost_review(
        month: Annotated[
            str | None, Field(description="Month to review, YYYY-MM; default: last full month.")
        ] = None,
        view: Annotated[str | None, Field(description="View id or name; default: the broadest view.")] = None,
    ) -> str:
        """Review one month's spend against the month before."""
        when = f"start={month}-01 and end=the last day of {month}" if month else 'period="last_month"'
        which = f"the view {fence(view)}" if view else "the broadest view (e.g. one grouped by service)"
        return (
            "Run a monthly cost review of our Finout account.\n"
            f"1. Call list_views and pick {which}.\n"
            f"2. Call query_view_costs with {when}, compare_previous=true: a whole calendar month is "
            "compared with the calendar month before (its `comparison` line names both months with their "
            "dates and day counts).\n"
            "3. Report the total, the top groups with their share, and the largest increases and "
            "decreases versus the calendar month before (amounts and percent); when the months differ in "
            "length, also the per-day change. State the cost type and whether the range is partial.\n"
            '4. For the biggest increase, call query_view_costs with granularity="day" to locate when it '
            "started.\n5. End with three concrete follow-ups."
        )

    @server.prompt(title="Find savings")
    def find_savings(
        cost_center: Annotated[
            str | None, Field(description="Only scans of this cost center, e.g. AWS, GCP, Kubernetes.")
        ] = None,
        min_yearly_savings: Annotated[
            float, Field(description="Ignore recommendations saving less than this per year.")
        ] = 0,
    ) -> str:
        """Turn CostGuard findings into a ranked savings plan."""
        scope = f"cost_center={fence(cost_center)}, " if cost_center else ""
        return (
            "Find the biggest savings CostGuard has identified.\n"
            f'1. Call summarize_savings ({scope}group_by="account", top_n=20): every scan\'s totals, the '
            "grand yearly total (a resource several scans flag counts once) and the top resources across scans.\n"
            f"2. Keep resources worth at least {min_yearly_savings:g} per year; they are ranked by yearly "
            "potential savings.\n"
            "3. For a scan worth a closer look, call get_scan_recommendations (group_by an account or "
            "namespace key if that helps ownership).\n"
            "4. Present a table: scan, resource, reason, yearly savings; then the grand total, what period "
            "cost and waste cover (the answer's coverage line), and who should act (by group)."
        )

    @server.prompt(title="Allocate costs with a virtual tag")
    def allocate_costs(
        tag_name: Annotated[str, Field(description="Name of the virtual tag to create or update, e.g. Team.")],
        allocation: Annotated[
            str,
            Field(
                description="In words: which costs go to which value, e.g. 'prod AWS accounts and the "
                "checkout namespace to Checkout'."
            ),
        ],
        default_value: Annotated[str, Field(description="Value for costs no rule matches.")] = "unallocated",
    ) -> str:
        """Build a virtual tag from a plain-language allocation, safely."""
        return (
            f"Allocate costs with the virtual tag {fence(tag_name)}: {fence(allocation)}; "
            f"everything else to {fence(default_value)}.\n"
            "1. Call list_virtual_tags: does the tag exist? If so, get_virtual_tag(tag, include_filters=true) "
            "and plan an update: its rules replace all rules, so send the complete list back, edited.\n"
            "2. For every dimension mentioned, find the key with list_megabill_keys and exact values "
            "with list_key_values.\n"
            "3. Write one rule per target value as an intent and check each with compose_filter; fix "
            "every error.\n"
            "4. Call lint_virtual_tag with the rules and default_value; fix shadowed or duplicate rules.\n"
            "5. Call create_virtual_tag (or update_virtual_tag) with dry_run=true and show the user the "
            "diff, the dependent tags it affects and any warnings. Only after they agree, call it again "
            "with dry_run=false (an update also with the dry run's expected_version, so exactly that is "
            "applied).\n"
            "6. Report the change_id: undo_change(change_id) reverts it."
        )

    @server.prompt(title="Investigate a cost spike")
    def investigate_spike(
        view: Annotated[str, Field(description="View id or name where the spike shows.")],
        day: Annotated[
            str | None,
            Field(description="Day of the spike, YYYY-MM-DD; default: find it in the last 30 days."),
        ] = None,
    ) -> str:
        """Find when a spike started, which groups drove it, and what to check."""
        around = (
            f"start and end around {fence(day)} (a week before to a week after)"
            if day
            else 'period="last_30_days"'
        )
        return (
            f"Investigate a cost spike in the view {fence(view)}.\n"
            f"1. Call find_cost_anomalies for {around}: it lists the series and days that departed from "
            "their own normal, with expected vs actual, excess dollars and their share of the view's change.\n"
            "2. Make the calls in its next_steps for the largest one, with the arguments given: query_costs "
            "breaks the series down (by account, usage type, namespace...) day by day, query_view_costs gives "
            "the view's daily figures.\n"
            "3. Use list_megabill_keys / list_key_values to name the accounts, services or namespaces "
            "involved; check get_scan_recommendations for related waste.\n"
            "4. Summarise: when, how much, which groups, likely cause, next checks."
        )


def check_prompt_request(prompts: Sequence[MCPPrompt], name: str, arguments: Mapping[str, Any] | None) -> None:
    """Refuse an unknown prompt, a missing argument or an unknown one, naming what to send instead.

    Raises ``MCPError(INVALID_PARAMS)``: the client sent a bad request, so it gets a message it
    can act on rather than the SDK's "Internal server error" (and no traceback in the log).
    """
    by_name = {p.name: p for p in prompts}
    prompt = by_name.get(name)
    if prompt is None:
        raise MCPError(INVALID_PARAMS, f"Unknown prompt {name!r}. The prompts are: {', '.join(sorted(by_name))}.")
    accepted = {a.name: a for a in prompt.arguments or []}
    given = set(arguments or {})
    missing = [a for a in accepted.values() if a.required and a.name not in given]
    if missing:
        needs = "; ".join(f"{a.name} ({a.description or 'required'})" for a in missing)
        raise MCPError(INVALID_PARAMS, f"Prompt {name!r} needs the argument(s) {needs}.")
    unknown = sorted(given - set(accepted))
    if unknown:
        raise MCPError(
            INVALID_PARAMS,
            f"Prompt {name!r} has no argument {', '.join(unknown)}; it takes {', '.join(accepted) or 'none'}.",
        )


def bad_prompt_value(name: str, exc: Exception) -> MCPError:
    """The error for a prompt whose argument values its types refuse (e.g. a word for a number)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ValidationError):
        cause = cause.__cause__
    if isinstance(cause, ValidationError):
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in cause.errors(include_url=False, include_input=False)
        )
    else:
        problems = "the arguments could not be used"
    return MCPError(INVALID_PARAMS, f"Prompt {name!r}: {problems}. Fix the argument and ask again.")
