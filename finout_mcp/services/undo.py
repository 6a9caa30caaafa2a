"""Undo, in one place: planning (what to call to revert a recorded write), drift checks (has
the target changed since that write?) and execution (step by step, recorded, resumable).

- :func:`plan_undo` is pure: from a :class:`ChangeRecord` it derives the steps.
- :func:`drift` compares the recorded after-image with the live target.
- :class:`Undoer` runs a plan: it adds the references to repoint (undo of a delete recreates
  the tag under a new id, and every tag that referred to the old id is repointed as part of
  the same recorded undo), holds the write locks, records each step as it happens, and —
  when an earlier undo of the same change stopped part-way (``partial``) — resumes it,
  skipping the steps that already happened.
"""

from __future__ import annotations

import builtins
import contextlib
import json
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from finout_mcp.api.errors import NotFoundError
from finout_mcp.api.models import (
    SERVER_OWNED_FIELDS,
    ValueMetadata,
    VirtualTag,
    VirtualTagWrite,
)
from finout_mcp.filters.canonical import strip_display_names
from finout_mcp.services.changelog import ChangeRecord, TargetType, WriteOperation
from finout_mcp.services.dependencies import repointed
from finout_mcp.services.diffs import diff_metadata, diff_tag, target_text
from finout_mcp.services.errors import InputError
from finout_mcp.services.fencing import fence
from finout_mcp.services.keys import key_index
from finout_mcp.services.recording import Recording
from finout_mcp.services.safety import canonical_rule, same_content
from finout_mcp.services.writes import (
    TagSummary,
    Writer,
    WriteResult,
    metadata_json,
    tag_json,
    version_of,
)

StepAction = Literal[
    "delete_virtual_tag", "put_virtual_tag", "create_virtual_tag", "put_virtual_tag_metadata", "repoint_references"
]


class UndoStep(BaseModel):
    key: str = Field(description="Stable name of the step within the undo (for resuming).")
    action: StepAction
    tag_id: str | None = Field(
        default=None, description="Target tag; None on a step after a create: use the new tag's id."
    )
    expected_name: str | None = None
    tag_body: dict[str, Any] | None = Field(default=None, description="POST/PUT body {name, rules, defaultValue}.")
    metadata: dict[str, Any] | None = Field(default=None, description="The value map to PUT as metadata.")
    old_id: str | None = Field(default=None, description="repoint_references: the id references point at now.")


class UndoPlan(BaseModel):
    undoes: str = Field(description="change_id of the record being undone (goes in the undo record's `undoes`).")
    effect: WriteOperation = Field(
        description="The write this undo performs (goes in the undo record's `effect`)."
    )
    target_type: TargetType
    target_id: str | None
    target_name: str | None
    steps: list[UndoStep]
    expected_live: dict[str, Any] | None = Field(
        default=None, description="What the target should look like now (the recorded after-image)."
    )
    before_image: Literal["tag", "tag_and_metadata", "metadata", "none"] = Field(
        description="What to record as the undo record's before-image."
    )
    notes: list[str] = Field(default_factory=list)


def tag_write_body(tag: dict[str, Any]) -> dict[str, Any]:
    """The POST/PUT body from a tag's JSON: server-owned fields and displayName dropped, the rest
    (``category`` and fields we do not know included) kept as it was read."""
    body: dict[str, Any] = {k: v for k, v in tag.items() if k not in SERVER_OWNED_FIELDS and v is not None}
    body["name"] = tag.get("name")
    body["rules"] = strip_display_names(tag.get("rules") or [])
    return body


def _need(rec: ChangeRecord, value: dict[str, Any] | None, what: str) -> dict[str, Any]:
    if not value:
        raise InputError(
            f"Change {rec.change_id} has no recorded {what}, so it cannot be undone automatically.",
            hint="Inspect the change with list_changes and fix the tag by hand.",
        )
    return value


def _inverse_target(rec: ChangeRecord) -> ChangeRecord:
    """An undo record seen as the plain write it performed (for redo / drift)."""
    if rec.operation != "undo":
        return rec
    if rec.effect is None:
        raise InputError(f"Undo record {rec.change_id} does not say what it did, so it cannot be reversed.")
    return rec.model_copy(update={"operation": rec.effect})


def plan_undo(rec: ChangeRecord, undone_by: ChangeRecord | None = None) -> UndoPlan:
    """What to call to revert ``rec`` (pure; no I/O). Raises :class:`InputError` if it cannot."""
    if undone_by is not None:
        raise InputError(
            f"Change {rec.change_id} was already undone by {undone_by.change_id}.",
            hint=f"To re-apply it, undo {undone_by.change_id} instead.",
        )
    if rec.status == "failed":
        raise InputError(
            f"Change {rec.change_id} failed ({rec.error or 'API error'}); nothing was changed to undo."
        )
    if rec.operation == "undo" and rec.status == "partial":
        raise InputError(
            f"Undo {rec.change_id} stopped part-way, so it cannot be reversed yet.",
            hint=f"Finish it first: undo_change({rec.undoes!r}) resumes it.",
        )
    if rec.operation == "create_endpoint":
        raise InputError(
            f"Change {rec.change_id} created endpoint {fence(rec.target_name or rec.target_id or '?')}, "
            "and the Finout API v1 cannot delete endpoints.",
            hint="Delete it in the Finout UI (Settings → Notifications/Endpoints).",
        )
    eff = _inverse_target(rec)
    notes: list[str] = []
    if rec.operation == "undo":
        notes.append(f"This reverses undo {rec.change_id} (re-applies change {rec.undoes}).")
    if rec.status == "pending":
        notes.append(
            "The original write was never confirmed (the server stopped during it): it may or may not "
            "have taken effect. Check the live state before forcing this undo."
        )
    name = rec.target_name
    common: dict[str, Any] = {"undoes": rec.change_id, "target_id": rec.target_id, "target_name": name}

    if eff.operation == "create_virtual_tag":
        if not rec.target_id:
            raise InputError(
                f"Change {rec.change_id} (create virtual tag {fence(name or '?')}) was never confirmed and "
                "its id was not recorded.",
                hint="If a tag with that name exists, call delete_virtual_tag with its id and name.",
            )
        notes.append("Deleting the tag also removes its metadata.")  # references: Undoer.undo checks them
        return UndoPlan(
            **common,
            effect="delete_virtual_tag",
            target_type="virtual_tag",
            steps=[UndoStep(key="delete", action="delete_virtual_tag", tag_id=rec.target_id, expected_name=name)],
            expected_live=rec.after,
            before_image="tag_and_metadata",
            notes=notes,
        )
    if eff.operation == "update_virtual_tag":
        before = _need(rec, rec.before, "before-image")
        return UndoPlan(
            **common,
            effect="update_virtual_tag",
            target_type="virtual_tag",
            steps=[
                UndoStep(
                    key="put",
                    action="put_virtual_tag",
                    tag_id=rec.target_id or before.get("id"),
                    expected_name=(rec.after or {}).get("name") or name,
                    tag_body=tag_write_body(before),
                )
            ],
            expected_live=rec.after,
            before_image="tag",
            notes=notes,
        )
    if eff.operation == "delete_virtual_tag":
        before = _need(rec, rec.before, "before-image")
        tag = _need(rec, before.get("tag"), "deleted tag")
        metadata = before.get("metadata") or {}
        steps = [
            UndoStep(
                key="create",
                action="create_virtual_tag",
                expected_name=tag.get("name"),
                tag_body=tag_write_body(tag),
            )
        ]
        if metadata:
            steps.append(
                UndoStep(key="metadata", action="put_virtual_tag_metadata", tag_id=None, metadata=metadata)
            )
        notes.append(
            f"The tag is recreated with a NEW id (the old id was {tag.get('id') or rec.target_id}); rules of other "
            "tags that refer to the old id are repointed to the new one in the same undo."
        )
        return UndoPlan(
            **common,
            effect="create_virtual_tag",
            target_type="virtual_tag",
            steps=steps,
            expected_live=None,
            before_image="none",
            notes=notes,
        )
    if eff.operation == "update_virtual_tag_metadata":
        before = _need(rec, rec.before, "before-image")
        return UndoPlan(
            **common,
            effect="update_virtual_tag_metadata",
            target_type="virtual_tag_metadata",
            steps=[
                UndoStep(
                    key="metadata",
                    action="put_virtual_tag_metadata",
                    tag_id=rec.target_id,
                    metadata=before.get("metadata") or {},
                )
            ],
            expected_live=rec.after,
            before_image="metadata",
            notes=notes,
        )
    raise InputError(f"Change {rec.change_id} ({rec.operation}) cannot be undone.")  # pragma: no cover


# ----------------------------------------------------------------------------- drift


def _tag_differences(expected: dict[str, Any], live: dict[str, Any]) -> builtins.list[str]:
    out: builtins.list[str] = []
    if expected.get("name") != live.get("name"):
        out.append(f"name is now {fence(str(live.get('name')))}, recorded {fence(str(expected.get('name')))}")
    if (expected.get("defaultValue") or None) != (live.get("defaultValue") or None):
        out.append(
            f"default value is now {fence(str(target_text(live.get('defaultValue'))))}, "
            f"recorded {fence(str(target_text(expected.get('defaultValue'))))}"
        )
    exp_rules = expected.get("rules") or []
    live_rules = live.get("rules") or []
    try:
        exp_c = [canonical_rule(r) for r in exp_rules]
        live_c = [canonical_rule(r) for r in live_rules]
    except ValidationError:
        exp_c, live_c = [json.dumps(exp_rules, sort_keys=True)], [json.dumps(live_rules, sort_keys=True)]
    if exp_c != live_c:
        changed = sum(1 for a, b in zip(exp_c, live_c, strict=False) if a != b) + abs(len(exp_c) - len(live_c))
        out.append(f"rules differ ({len(live_c)} live vs {len(exp_c)} recorded, {changed} rule(s) differ)")
    return out


def _value_canon(value: Any) -> str:
    """Canonical text of one value's metadata, defaults filled in."""
    if isinstance(value, dict) or value is None:
        with contextlib.suppress(ValidationError):
            return json.dumps(ValueMetadata.model_validate(value or {}).comparable(), sort_keys=True, default=str)
    return json.dumps(value, sort_keys=True, default=str)


def _metadata_differences(expected: Any, live: Any) -> builtins.list[str]:
    exp = expected if isinstance(expected, dict) else {}
    cur = live if isinstance(live, dict) else {}
    return [
        f"metadata of value {fence(value)} changed since the write"
        for value in sorted(set(exp) | set(cur))
        if value not in exp or value not in cur or _value_canon(exp[value]) != _value_canon(cur[value])
    ]


def drift(rec: ChangeRecord, live: dict[str, Any] | None) -> builtins.list[str]:
    """Differences between the recorded after-image of ``rec`` and the live object.

    ``live``: the tag JSON (None if it no longer exists) for tag changes, ``{"metadata": map}``
    for metadata changes. Empty: the undo would not clobber a later edit.
    """
    eff = _inverse_target(rec)
    if eff.operation == "create_endpoint":
        return []
    if rec.status == "pending":
        if (
            eff.operation in ("update_virtual_tag", "update_virtual_tag_metadata")
            and live is not None
            and rec.before
        ):
            same_as_before = (
                not _tag_differences(rec.before, live)
                if eff.operation == "update_virtual_tag"
                else not _metadata_differences(rec.before.get("metadata"), live.get("metadata"))
            )
            if same_as_before:
                return ["the write never took effect: the live object still equals the before-image"]
        return ["the write was never confirmed (status pending): its result could not be compared"]
    if eff.operation == "delete_virtual_tag":
        return [] if live is None else ["a tag with the deleted tag's id exists again"]
    if eff.operation in ("create_virtual_tag", "update_virtual_tag"):
        if live is None:
            return [f"tag {rec.target_id} no longer exists"]
        if rec.after is None:
            return ["no after-image was recorded"]
        return _tag_differences(rec.after, live)
    if eff.operation == "update_virtual_tag_metadata":
        if live is None:
            return [f"tag {rec.target_id} or its metadata no longer exists"]
        return _metadata_differences((rec.after or {}).get("metadata"), live.get("metadata"))
    return []  # pragma: no cover


def restoration(
    rec: ChangeRecord, plan: UndoPlan, tag: dict[str, Any] | None, metadata: dict[str, Any] | None
) -> tuple[bool, str]:
    """Is the target, read back after undoing ``rec``, exactly as it was before ``rec``? Compares with
    the recorded before-image, ignoring what Finout owns (id, dates, who, displayName). ``tag``: the tag
    read back (None: gone); ``metadata``: its metadata read back, when the undo wrote metadata.
    Returns (identical, the sentence to show)."""
    name = fence(plan.target_name or rec.target_name or rec.target_id or "")
    since = f"before {rec.change_id}"
    before: dict[str, Any] = rec.before or {}
    if plan.effect == "delete_virtual_tag":
        if tag is None:
            return True, f"{name} no longer exists, as {since}."
        return (
            False,
            f"{name} can still be read (id {tag.get('id')}) after the undo deleted it: check list_virtual_tags.",
        )
    if plan.effect == "update_virtual_tag_metadata":
        diffs = _metadata_differences(before.get("metadata"), metadata)
        if not diffs:
            return True, f"The metadata of {name} is now exactly as it was {since} (read back from Finout)."
        return False, f"The metadata of {name} is not as it was {since}: " + "; ".join(diffs) + "."
    image = before.get("tag") if plan.effect == "create_virtual_tag" else before
    if tag is None or not image:
        return False, f"{name} could not be read back to compare it with its state {since}: check get_virtual_tag."
    problems: builtins.list[str] = []
    if tag_write_body(image) != tag_write_body(tag):
        problems = _tag_differences(image, tag) or [
            "the same name, default value and rules, but not in the same order or with other fields"
        ]
    if plan.effect == "create_virtual_tag" and before.get("metadata"):
        problems.extend(_metadata_differences(before.get("metadata"), metadata))
    if problems:
        return False, f"{name} is not exactly as it was {since}: " + "; ".join(problems) + "."
    recreated = f" (recreated with a new id, {tag.get('id')})" if plan.effect == "create_virtual_tag" else ""
    return True, f"{name} is now exactly as it was {since}{recreated}: read back from Finout and compared."


# ----------------------------------------------------------------------------- execution


def _describe(step: UndoStep, names: dict[str, str]) -> str:
    if step.action == "delete_virtual_tag":
        return f"delete tag {fence(step.expected_name or '')} ({step.tag_id})"
    if step.action == "put_virtual_tag":
        return f"restore tag {step.tag_id} to its recorded version"
    if step.action == "create_virtual_tag":
        return f"recreate tag {fence(step.expected_name or '')}"
    if step.action == "put_virtual_tag_metadata":
        return f"restore metadata of {len(step.metadata or {})} value(s)" + (
            f" on tag {step.tag_id}" if step.tag_id else " on the recreated tag"
        )
    return (
        f"repoint references in tag {fence(names.get(step.tag_id or '', step.tag_id or ''))} to the recreated tag"
    )


class Undoer:
    """Runs undo plans through a :class:`Writer`'s client, catalogue, store and actor."""

    def __init__(self, writer: Writer) -> None:
        self.w = writer
        self.store = writer.store
        self.client = writer.client
        self.written_metadata: list[tuple[str, dict[str, ValueMetadata], int]] = []

    async def _live_for(self, target_type: str, tag_id: str | None) -> dict[str, Any] | None:
        if tag_id is None:
            return None
        try:
            if target_type == "virtual_tag_metadata":
                return {"metadata": metadata_json((await self.client.get_virtual_tag_metadata(tag_id)).metadata)}
            return tag_json(await self.client.get_virtual_tag(tag_id))
        except NotFoundError:
            return None

    async def prepare(self, change_id: str) -> tuple[ChangeRecord, UndoPlan, ChangeRecord | None]:
        """The record, its plan (with references to repoint), and a partial undo to resume (if any)."""
        rec = self.store.get(change_id)
        attempts = self.store.undos_of(rec.change_id)
        resume = next((a for a in reversed(attempts) if a.status in ("partial", "pending") and a.steps), None)
        if resume is not None and any(a.status == "done" and a.at > resume.at for a in attempts):
            resume = None
        plan = plan_undo(rec, undone_by=None if resume else self.store.undone_by(rec.change_id))
        if plan.effect == "create_virtual_tag":
            old_id = rec.target_id or ((rec.before or {}).get("tag") or {}).get("id")
            if old_id:
                graph = await self.w.tag_graph(fresh=True)
                for ref_id in dict.fromkeys(r.from_id for r in graph.references_to(old_id)):
                    plan.steps.append(
                        UndoStep(
                            key=f"repoint:{ref_id}",
                            action="repoint_references",
                            tag_id=ref_id,
                            expected_name=graph.tags[ref_id].name,
                            old_id=old_id,
                        )
                    )
        return rec, plan, resume

    async def undo(
        self,
        change_id: str,
        *,
        dry_run: bool,
        force: bool,
        expected_version: str | None = None,
        include_body: bool = False,
    ) -> WriteResult:
        rec, plan, resume = await self.prepare(change_id)
        names = {t.id: t.name for t in (await self.w.tag_graph()).tags.values()}
        done_keys = {str((s.detail or {}).get("key")) for s in (resume.steps if resume else [])}
        new_id = next((s.new_id for s in (resume.steps if resume else []) if s.new_id), None)
        live = await self._live_for(plan.target_type, plan.target_id)
        problems = [] if resume else drift(rec, live)
        if problems and not force:
            raise InputError(
                f"Undo of {rec.change_id} refused: the target changed since that write: "
                + "; ".join(problems)
                + ".",
                hint="Review the live state (get_virtual_tag); pass force=true to overwrite it anyway.",
            )
        todo = [s for s in plan.steps if s.key not in done_keys]
        reference_warnings = await self._references_to_deleted(rec, plan, live, force)
        result = await self._preview(rec, plan, live, todo, names, include_body)
        result.warnings.extend(reference_warnings)
        if resume is not None:
            result.notes.insert(
                0,
                f"Resuming undo {resume.change_id}, which stopped part-way: already done: "
                + "; ".join(s.action + (f" (new id {s.new_id})" if s.new_id else "") for s in resume.steps)
                + ".",
            )
        assert result.expected_version is not None
        self.w.check_expected(expected_version, result.expected_version, lambda _st: "", "the target")
        if dry_run:
            return result
        lock_ids = [i for i in [plan.target_id, *(s.tag_id for s in todo if s.tag_id)] if i]
        async with self.store.tag_lock(lock_ids):
            if resume is None and self._version(plan, live) != self._version(
                plan, await self._live_for(plan.target_type, plan.target_id)
            ):
                raise InputError(
                    f"Nothing was sent: the target of {rec.change_id} was changed by another writer while this "
                    "undo was being prepared.",
                    hint="Run undo_change with dry_run=true again to see the current state.",
                )
            recording = Recording.resume(self.store, resume) if resume else await self._start(rec, plan, live)
            try:
                after = await self._run(recording, plan, todo, new_id, names)
            finally:
                self.w.catalog.invalidate("virtual_tags")
            new_tag_id = (after or {}).get("id") if plan.effect == "create_virtual_tag" else None
            recording.done(after=after, target_id=new_tag_id)
        restored_metadata: dict[str, Any] | None = None
        for tag_id, md, status in self.written_metadata:  # the metadata it restored must read back as sent
            back = await self.w._metadata_read_back(tag_id)
            self.w.verify_metadata(plan.target_name or tag_id, md, back, recording.change_id, status, before=None)
            if isinstance(back, dict):
                restored_metadata = metadata_json(back)
        result.status = "undone"
        # the version to chain on: the restored tag's, as written back (a metadata undo or a removal has none)
        result.expected_version = version_of(after.get("id"), tag=after) if after and "rules" in after else None
        result.change_id = recording.change_id
        result.steps = recording.happened
        shown = after if after and "rules" in after else None
        if shown is None and plan.effect != "delete_virtual_tag":  # metadata undo: say which tag, rightly
            shown = await self._live_for("virtual_tag", plan.target_id)
        result.tag = TagSummary(
            id=(shown or {}).get("id") or plan.target_id,
            name=(shown or {}).get("name") or plan.target_name or "",
            default_value=(shown or {}).get("defaultValue"),
            rules=len(shown["rules"]) if shown and "rules" in shown else None,
        )
        if plan.effect == "update_virtual_tag":
            read_back = after  # read back right after the PUT, under the lock
        elif plan.effect == "update_virtual_tag_metadata":
            read_back = None  # the metadata was read back above
        else:  # a recreated tag as Finout now holds it (not the POST's answer), or a deleted one gone
            read_back = await self._live_for("virtual_tag", (after or {}).get("id") or plan.target_id)
        identical, sentence = restoration(rec, plan, read_back, restored_metadata)
        if not identical:
            result.warnings.append(sentence)
        result.notes = [
            f"Reverted {rec.change_id}. undo_change({recording.change_id!r}) re-applies it.",
            *([sentence] if identical else []),
            *plan.notes,
            *recording.notes(),
        ]
        return result

    async def _references_to_deleted(
        self, rec: ChangeRecord, plan: UndoPlan, live: dict[str, Any] | None, force: bool
    ) -> list[str]:
        """Undoing a create deletes the tag: like delete_virtual_tag, refused while other tags (made
        since, by anyone) refer to it, unless ``force``; then the result warns, naming each one."""
        if plan.effect != "delete_virtual_tag" or not plan.target_id or live is None:
            return []
        refs = (await self.w.tag_graph(fresh=True)).references_to(plan.target_id)
        if not refs:
            return []
        listed = "; ".join(r.describe() for r in refs)
        if not force:
            raise InputError(
                f"Undo of {rec.change_id} refused: it deletes {fence(plan.target_name or plan.target_id)}, and "
                f"{len(refs)} reference(s) from other tags use it: {listed}.",
                hint="Update those tags first so they no longer refer to it, or pass force=true to undo anyway "
                "(their conditions then match nothing and their `to` points at a missing tag).",
            )
        return [f"force=true: these references will point at a deleted tag: {listed}."]

    async def _start(self, rec: ChangeRecord, plan: UndoPlan, live: dict[str, Any] | None) -> Recording:
        before: dict[str, Any] | None = None
        if plan.before_image in ("tag", "tag_and_metadata"):
            tag_live = await self._live_for("virtual_tag", plan.target_id)
            if plan.before_image == "tag_and_metadata":
                meta = await self._live_for("virtual_tag_metadata", plan.target_id)
                before = {"tag": tag_live, "metadata": (meta or {}).get("metadata", {})}
            else:
                before = tag_live
        elif plan.before_image == "metadata":
            before = live
        return Recording.start(
            self.store,
            "undo",
            plan.target_type,
            actor=self.w.actor,
            intent=f"undo {rec.change_id} ({rec.operation} {fence(rec.target_name or rec.target_id or '')})",
            target_id=plan.target_id,
            target_name=plan.target_name,
            before=before,
            undoes=plan.undoes,
            effect=plan.effect,
        )

    async def _run(
        self,
        recording: Recording,
        plan: UndoPlan,
        todo: list[UndoStep],
        new_id: str | None,
        names: dict[str, str],
    ) -> dict[str, Any] | None:
        after: dict[str, Any] | None = None
        for n, step in enumerate(todo):
            desc = _describe(step, names)
            rest = [_describe(s, names) for s in todo[n + 1 :]]
            detail = {"key": step.key}
            if step.action == "delete_virtual_tag":
                assert step.tag_id is not None
                tid = step.tag_id
                await recording.step(
                    desc,
                    partial(self.client.delete_virtual_tag, tid),
                    action=step.action,
                    target_id=tid,
                    detail=detail,
                    remaining=rest,
                )
                after = None
            elif step.action == "put_virtual_tag":
                assert step.tag_id is not None and step.tag_body is not None
                tid, body = step.tag_id, VirtualTagWrite.model_validate(step.tag_body)
                await recording.step(
                    desc,
                    partial(self.client.update_virtual_tag, tid, body),
                    action=step.action,
                    target_id=tid,
                    detail=detail,
                    remaining=rest,
                )
                after = await self._live_for("virtual_tag", tid)
            elif step.action == "create_virtual_tag":
                assert step.tag_body is not None
                body = VirtualTagWrite.model_validate(step.tag_body)
                created = await recording.step(
                    desc,
                    partial(self._create_or_adopt, body),
                    action=step.action,
                    target_id=None,
                    new_id=lambda t: t.id,
                    detail=detail,
                    remaining=rest,
                )
                new_id = created.id
                after = tag_json(created)
            elif step.action == "put_virtual_tag_metadata":
                target = step.tag_id or new_id
                assert target is not None and step.metadata is not None
                md = {k: ValueMetadata.model_validate(v) for k, v in step.metadata.items()}
                ack = await recording.step(
                    desc,
                    partial(self.client.set_virtual_tag_metadata, target, md),
                    action=step.action,
                    target_id=target,
                    detail=detail,
                    remaining=rest,
                )
                self.written_metadata.append((target, md, ack.status))
                if plan.target_type == "virtual_tag_metadata":
                    after = {"metadata": step.metadata}
            elif step.action == "repoint_references":
                assert step.tag_id is not None and step.old_id is not None and new_id is not None
                await self._repoint(recording, step, new_id, desc, rest, detail)
        if after is None and plan.effect == "create_virtual_tag" and new_id is not None:
            after = await self._live_for("virtual_tag", new_id)
        if after is not None and new_id is not None and plan.effect == "create_virtual_tag":
            after.setdefault("id", new_id)
        return after

    async def _create_or_adopt(self, body: VirtualTagWrite) -> VirtualTag:
        """Recreate a tag; if one with this name and content exists already (an earlier attempt whose
        answer was lost), take it instead of making a duplicate."""
        existing = next(
            (
                t
                for t in await self.w.catalog.virtual_tags(refresh=True)
                if t.name.casefold() == body.name.casefold()
            ),
            None,
        )
        if existing is not None:
            live = await self.client.get_virtual_tag(existing.id)
            if same_content(live, body):
                return live
            raise InputError(
                f"Cannot recreate {fence(body.name)}: another tag with that name exists (id {live.id}) with "
                "different content.",
                hint="Rename or delete that tag, then call undo_change again.",
            )
        return await self.client.create_virtual_tag(body)

    async def _repoint(
        self, recording: Recording, step: UndoStep, new_id: str, desc: str, rest: list[str], detail: dict[str, Any]
    ) -> None:
        assert step.tag_id is not None and step.old_id is not None
        tid, old = step.tag_id, step.old_id
        try:
            current = await self.client.get_virtual_tag(tid)
        except NotFoundError:
            recording.happened.append(f"{desc}: skipped, that tag no longer exists")
            return
        body = repointed(current, old, new_id)
        if body is None:
            recording.happened.append(f"{desc}: nothing to repoint anymore")
            return
        await recording.step(
            desc,
            lambda: self.client.update_virtual_tag(tid, body),
            action="put_virtual_tag",
            target_id=tid,
            detail={**detail, "before": tag_json(current)},
            remaining=rest,
        )

    @staticmethod
    def _version(plan: UndoPlan, live: dict[str, Any] | None) -> str:
        if plan.target_type == "virtual_tag_metadata":
            return version_of(plan.target_id, metadata=(live or {}).get("metadata") or {})
        return version_of(plan.target_id, tag=live) if live is not None else version_of(plan.target_id, gone=True)

    async def _preview(
        self,
        rec: ChangeRecord,
        plan: UndoPlan,
        live: dict[str, Any] | None,
        todo: list[UndoStep],
        names: dict[str, str],
        include_body: bool,
    ) -> WriteResult:
        """The dry-run answer: the diff the undo would apply, its steps, and the version it was planned on."""
        result = WriteResult(
            status="dry_run",
            destructive=True,
            steps=[_describe(s, names) for s in todo],
            notes=["Nothing was sent.", *plan.notes],
        )
        index = key_index(self.w.catalog, await self.w.catalog.keys())
        put = next((s for s in todo if s.action == "put_virtual_tag"), None)
        create = next((s for s in todo if s.action == "create_virtual_tag"), None)
        md_step = next((s for s in todo if s.action == "put_virtual_tag_metadata"), None)
        if put is not None and put.tag_body is not None and live is not None:
            current = VirtualTag.model_validate(live)
            target = VirtualTagWrite.model_validate(put.tag_body)
            result.diff = diff_tag(current, target, index, tag_names=names, include_filters=include_body)
            result.tag = TagSummary(
                id=current.id, name=target.name, default_value=target.default_value, rules=len(target.rules)
            )
        elif create is not None and create.tag_body is not None:
            target = VirtualTagWrite.model_validate(create.tag_body)
            empty = VirtualTag(id="", name=target.name, rules=[], default_value=target.default_value)
            result.diff = diff_tag(empty, target, index, tag_names=names, include_filters=include_body)
            result.tag = TagSummary(
                id=None, name=target.name, default_value=target.default_value, rules=len(target.rules)
            )
        elif plan.effect == "delete_virtual_tag" and live is not None:
            current = VirtualTag.model_validate(live)
            result.tag = TagSummary(
                id=current.id, name=current.name, default_value=current.default_value, rules=len(current.rules)
            )
        if md_step is not None and md_step.metadata is not None:
            before_md = {}
            if plan.target_type == "virtual_tag_metadata" and live is not None:
                before_md = {k: ValueMetadata.model_validate(v) for k, v in (live.get("metadata") or {}).items()}
            after_md = {k: ValueMetadata.model_validate(v) for k, v in md_step.metadata.items()}
            result.metadata_diff = diff_metadata(before_md, after_md)
        if include_body:
            result.body = {"steps": [s.model_dump(exclude_none=True) for s in todo]}
        result.expected_version = self._version(plan, live)
        result.notes.append(
            f"To apply exactly this, call undo_change({rec.change_id!r}, dry_run=false, "
            f"expected_version={result.expected_version!r})."
        )
        return result
