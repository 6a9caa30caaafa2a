"""The change log as tools: ``list_changes`` (who changed what, can it still be undone) and
``undo_change`` (revert one recorded write)."""

from __future__ import annotations

import contextlib
import logging
from typing import Annotated

from mcp.server.elicitation import ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import BaseModel, Field

from finout_mcp.api.errors import FinoutError
from finout_mcp.server.confirm import Confirm, Preview, answered_no, confirmed_version, message, preview_if_asking
from finout_mcp.server.state import get_state
from finout_mcp.server.tools.common import (
    DESTRUCTIVE,
    READ,
    DryRun,
    ExpectedVersion,
    IncludeBody,
    ToolSpec,
)
from finout_mcp.services.changelog import ChangeRecord, ChangeStore
from finout_mcp.services.dependencies import TagGraph
from finout_mcp.services.diffs import describe_change
from finout_mcp.services.errors import InputError
from finout_mcp.services.keys import KeyIndex, key_index
from finout_mcp.services.results import Envelope
from finout_mcp.services.writes import WriteResult

log = logging.getLogger(__name__)

ChangeId = Annotated[
    str,
    Field(
        description="The change_id a write returned (list_changes shows them), e.g. chg_20261125T120501Z_3f9a0c12d4e5.",
        min_length=1,
        max_length=200,
    ),
]


class ChangeItem(BaseModel):
    change_id: str
    at: str = Field(description="When the write was made (UTC).")
    actor: str = Field(description="Who made it: the OS user (stdio) or the authenticated subject.")
    operation: str
    intent: str = Field(description="What the write meant to do, readable.")
    summary: str | None = Field(
        default=None,
        description="What it changed, value by value, from the recorded before and after "
        "(e.g. 'rule 1: Account Name: +staging'); None when not recorded.",
    )
    tag_id: str | None = None
    tag_name: str | None = None
    status: str = Field(description="done, partial (some steps happened), pending (outcome unknown) or failed.")
    steps: list[str] = Field(default_factory=list, description="Calls that reached Finout, with new ids.")
    ids: list[str] = Field(default_factory=list, description="Every id the change touched or created.")
    undoes: str | None = Field(default=None, description="For an undo: the change it reverts.")
    undone_by: str | None = None
    undoable: bool
    why_not: str | None = Field(default=None, description="Why it cannot be undone (when undoable is false).")
    error: str | None = None


class ChangeList(Envelope):
    changes: list[ChangeItem]


def _undoable(store: ChangeStore, rec: ChangeRecord) -> tuple[bool, str | None, str | None]:
    undone = store.undone_by(rec.change_id)
    if undone is not None:
        return False, f"already undone by {undone.change_id}", undone.change_id
    if rec.status == "failed":
        return False, "it failed: nothing was changed", None
    if rec.operation == "create_endpoint":
        return False, "the Finout API cannot delete endpoints", None
    if rec.operation == "undo" and rec.status == "partial":
        return False, f"it stopped part-way: undo_change({rec.undoes!r}) finishes it", None
    if rec.operation == "create_virtual_tag" and not rec.target_id:
        return False, "the created tag's id was never recorded", None
    return True, None, None


async def list_changes(
    ctx: Context,
    tag: Annotated[
        str | None, Field(description="Only changes that touched this tag (id or name, also a deleted one).")
    ] = None,
    limit: Annotated[int, Field(description="Most recent changes to return.", ge=1, le=500)] = 20,
) -> ChangeList:
    """The change log: recent writes made through this server (newest first) — who made each, what it
    did, its steps and ids, and whether undo_change can still revert it. Read-only."""
    state = get_state(ctx)
    store = state.changelog
    refs: list[str] = []
    if tag is not None:
        refs.append(tag)
        # the tag's current id finds changes recorded under another name (renamed, repointed); if it is
        # deleted or Finout is unreachable, the log alone still answers
        with contextlib.suppress(InputError, FinoutError):
            refs.append((await state.catalog.resolve_tag(tag)).id)
    records = store.list(limit, tag=refs or None)
    index: KeyIndex | None = None
    names: dict[str, str] = {}
    graph: TagGraph | None = None
    if records:  # display names for the summaries; without Finout the raw keys still read
        with contextlib.suppress(InputError, FinoutError):
            tags = await state.catalog.virtual_tags()
            names = {t.id: t.name for t in tags}
            graph = TagGraph(tags)
            index = key_index(state.catalog, await state.catalog.keys())
    log.debug("change log read from %s", getattr(store, "location", "?"))
    items = []
    for rec in records:
        ok, why, undone_by = _undoable(store, rec)
        if ok and graph is not None and rec.operation == "create_virtual_tag" and rec.target_id:
            users = graph.references_to(rec.target_id)  # undo deletes the tag: refused while others use it
            if users:
                listed = "; ".join(r.describe() for r in users)
                ok = False
                why = (
                    f"other tags use the tag it created: {listed} (update them first, or undo_change with "
                    "force=true breaks those references)"
                )
        items.append(
            ChangeItem(
                change_id=rec.change_id,
                at=rec.at,
                actor=rec.actor,
                operation=rec.operation if rec.operation != "undo" else f"undo ({rec.effect})",
                intent=rec.intent,
                summary=_summary(rec, index, names),
                tag_id=rec.target_id,
                tag_name=rec.target_name,
                status=rec.status,
                steps=[
                    s.action + (f" → new id {s.new_id}" if s.new_id else f" {s.target_id}" if s.target_id else "")
                    for s in rec.steps
                ],
                ids=rec.ids,
                undoes=rec.undoes,
                undone_by=undone_by,
                undoable=ok,
                why_not=why,
                error=rec.error,
            )
        )
    notes = [] if items else ["No recorded changes" + (f" for {tag!r}." if tag else ".")]
    notes.append(
        "Only writes made through this server are listed; changes made in Finout's UI or by other tools are not."
    )
    if items:
        notes.append(
            "actor is who asked this server for the write (the signed-in user, or the local account); Finout "
            "records every API write as updated_by 'API', so get_virtual_tag shows that instead."
        )
    if any(i.status in ("pending", "partial") for i in items):
        notes.append("pending: the outcome was not recorded (check the tag); partial: only some steps happened.")
    return ChangeList(changes=items, notes=notes)


def _summary(rec: ChangeRecord, index: KeyIndex | None, names: dict[str, str]) -> str | None:
    if rec.before is None and rec.after is None:
        return None
    try:
        return describe_change(rec.before, rec.after, index, names) or None
    except (
        ValueError,
        TypeError,
        AttributeError,
    ) as exc:  # an image from an older format: the intent still says it
        log.debug("change %s: no summary (%s)", rec.change_id, type(exc).__name__)
        return None


async def preview_undo(ctx: Context, change_id: str, dry_run: bool, force: bool) -> Preview:
    from finout_mcp.services.undo import Undoer

    async def plan() -> WriteResult:
        return await Undoer(get_state(ctx).writer(ctx)).undo(change_id, dry_run=True, force=force)

    return await preview_if_asking(ctx, dry_run, plan)


async def ask_undo(
    preview: Annotated[Preview, Resolve(preview_undo)],
) -> Confirm | Elicit[Confirm]:
    if preview.plan is None:
        return Confirm()
    return Elicit(message("Undo this change", preview.plan), Confirm)


async def undo_change(
    ctx: Context,
    change_id: ChangeId,
    preview: Annotated[Preview, Resolve(preview_undo)],
    answer: Annotated[ElicitationResult[Confirm], Resolve(ask_undo)],
    dry_run: DryRun = False,
    force: Annotated[
        bool,
        Field(
            description="true: undo even if the target changed since (overwrites the later edit), or if "
            "other tags now refer to a tag the undo deletes (their references break)."
        ),
    ] = False,
    expected_version: ExpectedVersion = None,
    include_body: IncludeBody = False,
) -> WriteResult:
    """Revert one recorded write: delete a created tag, restore a previous version or metadata, recreate a
    deleted tag (and repoint tags that referred to it). dry_run=true shows the diff it would apply.
    Refused if the target changed since, or if other tags now refer to a tag it would delete, unless
    force=true. An undo that stopped part-way is finished
    by calling it again. The undo is recorded too (undo it to re-apply)."""
    from finout_mcp.services.undo import Undoer

    if (no := answered_no(answer, preview)) is not None:
        return no
    return await Undoer(get_state(ctx).writer(ctx)).undo(
        change_id,
        dry_run=dry_run,
        force=force,
        expected_version=confirmed_version(answer, preview, expected_version),
        include_body=include_body,
    )


TOOLS = (
    ToolSpec(list_changes, READ, "List recorded changes"),
    ToolSpec(undo_change, DESTRUCTIVE, "Undo a recorded write"),
)
