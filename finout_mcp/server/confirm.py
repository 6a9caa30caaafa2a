"""Asking the human before a destructive write, where the client can (MCP elicitation).

Each destructive tool (update that removes values, delete, metadata that removes or replaces,
undo) has two resolvers (the SDK's ``Resolve``, which works on every protocol revision):
a *preview* that plans the write without sending anything, and an *ask* that — when the
client declared elicitation and the plan is destructive — asks the user to confirm with the
readable diff. The tool then applies exactly the previewed version (``expected_version``),
or sends nothing if the user declined or cancelled. Clients without elicitation keep the
dry-run + ``confirm_name``/``force`` flow: the resolvers then ask nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from finout_mcp.services.writes import WriteResult

log = logging.getLogger(__name__)

MAX_MESSAGE = 3000


class Confirm(BaseModel):
    """The one question: apply the change shown?"""

    confirm: bool = Field(default=True, description="Apply this change to the Finout account.")


@dataclass
class Preview:
    """The planned write shown to the user (None: nothing to ask)."""

    plan: WriteResult | None = None


def can_elicit(ctx: Context) -> bool:
    try:
        caps = ctx.client_capabilities
    except Exception:  # no request in flight (a direct call): nobody to ask
        return False
    return caps is not None and caps.elicitation is not None


async def preview_if_asking(ctx: Context, dry_run: bool, plan: Callable[[], Awaitable[WriteResult]]) -> Preview:
    """Plan the write when a confirmation will be asked; errors are left for the tool to report."""
    if dry_run or not can_elicit(ctx):
        return Preview()
    try:
        result = await plan()
    except Exception as exc:  # the tool body plans again and reports it properly
        log.debug("preview for confirmation failed: %s", type(exc).__name__)
        return Preview()
    return Preview(result if result.destructive and result.status == "dry_run" else None)


def message(action: str, plan: WriteResult) -> str:
    """The confirmation text: what (and in which account, when there are several), the readable
    diff, dependents and warnings."""
    from finout_mcp.server.state import current_account

    account = current_account()
    lines = [f"{action} in the Finout account {account!r}?" if account else f"{action}?"]
    if plan.diff is not None:
        lines.append(plan.diff.summary)
        for r in plan.diff.rules:
            head = f"Rule {r.after_index if r.after_index is not None else r.index} {r.change}"
            if r.value_changes:
                lines.append(f"- {head}: {'; '.join(r.value_changes)}")
            else:
                lines.append(f"- {head}: {r.after or r.before or ''}")
    if plan.metadata_diff is not None:
        lines.append(f"Metadata: {plan.metadata_diff.summary}")
        for value, changes in plan.metadata_diff.changed.items():
            lines.append(f"- {value}: {'; '.join(changes)}")
    lines.extend(f"Step: {s}" for s in plan.steps)
    if plan.dependents is not None and plan.dependents.references:
        lines.append("Used by: " + "; ".join(plan.dependents.references))
    lines.extend(f"Warning: {w}" for w in plan.warnings)
    text = "\n".join(lines)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def answered_no(answer: ElicitationResult[Confirm] | None, preview: Preview) -> WriteResult | None:
    """The result to return when the user said no (declined, cancelled, or unticked confirm)."""
    if preview.plan is None or answer is None:
        return None
    if isinstance(answer, AcceptedElicitation):
        data = answer.data
        if not isinstance(data, Confirm) or data.confirm:
            return None
        status = "declined"
    else:
        status = "declined" if answer.action == "decline" else "cancelled"
    out = preview.plan.model_copy(deep=True)
    out.status = status  # type: ignore[assignment]
    out.notes = [f"The user {status} the confirmation; nothing was sent."]
    return out


def confirmed_version(
    answer: ElicitationResult[Confirm] | None, preview: Preview, given: str | None
) -> str | None:
    """The version to apply: the one the user saw when they confirmed, else the one the caller gave."""
    if preview.plan is not None and isinstance(answer, AcceptedElicitation):
        return given or preview.plan.expected_version
    return given
