"""Safe writes: validate, preview (dry run), record a before-image, write, and undo.

Every write goes through :class:`Writer`:
1. validate everything that can be checked locally (names, rules through the composer and the
   linter, metadata value names, endpoint addresses) and refuse on any error finding;
2. read the live state (fresh, never from the cache) to build the full body — Finout's PUT
   replaces the whole object, so a partial body is never sent;
3. ``dry_run``: return exactly the body that would be sent (and a diff), send nothing;
4. otherwise: append the intent with the before-image to the change log (fsynced), call the
   API, append the after-image, invalidate the cache, and return the ``change_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from finout_mcp.api.client import FinoutClient
from finout_mcp.api.errors import FinoutError, MalformedResponseError, NotFoundError
from finout_mcp.api.models import (
    DefaultValue,
    Endpoint,
    EndpointCreate,
    TagReference,
    ValueMetadata,
    VirtualTag,
    VirtualTagRule,
    VirtualTagWrite,
    metadata_body,
    value_label,
)
from finout_mcp.services.catalog import Catalog
from finout_mcp.services.changelog import ChangeLog, ChangeRecord, Operation, TargetType, drift
from finout_mcp.services.errors import InputError, WriteVerificationError
from finout_mcp.services.fencing import fence
from finout_mcp.services.lint import LintReport, RuleSpec, lint_rules
from finout_mcp.services.readback import metadata_mismatches
from finout_mcp.services.safety import (
    TagDiff,
    diff_tag,
    in_endpoint_style,
    mask_endpoint,
    merge_metadata,
    same_content,
    validate_email,
    validate_metadata_values,
    validate_name,
    validate_slack_webhook,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

WriteStatus = Literal["dry_run", "created", "updated", "deleted", "unchanged", "undone"]


class TagSummary(BaseModel):
    id: str | None
    name: str
    default_value: str | None = None
    rules: int = 0


class WriteResult(BaseModel):
    status: WriteStatus = Field(description="What happened; dry_run means nothing was sent.")
    change_id: str | None = Field(
        default=None, description="Pass to undo_change to revert this write (None when nothing was written)."
    )
    tag: TagSummary | None = None
    body: dict[str, Any] | None = Field(default=None, description="Exactly the JSON body sent (or to be sent).")
    diff: TagDiff | None = None
    metadata: dict[str, ValueMetadata] | None = None
    endpoint: Endpoint | None = None
    warnings: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def _summary(tag: VirtualTag) -> TagSummary:
    return TagSummary(id=tag.id, name=tag.name, default_value=value_label(tag.default_value), rules=len(tag.rules))


def _body_summary(body: VirtualTagWrite, tag_id: str | None) -> TagSummary:
    return TagSummary(
        id=tag_id, name=body.name, default_value=value_label(body.default_value), rules=len(body.rules)
    )


def _metadata_json(metadata: dict[str, ValueMetadata]) -> dict[str, Any]:
    """Metadata as Finout holds it (each value's fields as read or set): what undo sends back."""
    return metadata_body(metadata)


def _tag_json(tag: VirtualTag) -> dict[str, Any]:
    return tag.model_dump(by_alias=True, exclude_none=True, mode="json")


def lint_failure(report: LintReport) -> InputError:
    lines: list[str] = []
    for f in report.findings:
        if f.severity == "error":
            lines.append(f.message)
    for r in report.rules:
        for f in r.findings:
            if f.severity == "error":
                lines.append(f"rule {r.index + 1} (to {r.to}): {f.message}")
    shown = "; ".join(lines[:8]) + (f"; and {len(lines) - 8} more" if len(lines) > 8 else "")
    return InputError(
        f"Nothing was written: the rules have {len(lines)} error(s): {shown}.",
        hint="Fix them (compose_filter and lint_virtual_tag show each finding with suggestions) and call again.",
    )


def _warnings(report: LintReport) -> list[str]:
    out = [f.message for f in report.findings if f.severity == "warning"]
    for r in report.rules:
        out.extend(f"rule {r.index + 1}: {f.message}" for f in r.findings if f.severity == "warning")
    return out


class Writer:
    def __init__(self, client: FinoutClient, catalog: Catalog, changelog: ChangeLog) -> None:
        self.client = client
        self.catalog = catalog
        self.changelog = changelog

    # ------------------------------------------------------------------ plumbing

    async def _logged(
        self,
        operation: Operation,
        target_type: TargetType,
        call: Callable[[], Awaitable[T]],
        *,
        target_id: str | None,
        target_name: str | None,
        before: dict[str, Any] | None,
        after: Callable[[T], dict[str, Any] | None],
        new_id: Callable[[T], str | None] = lambda _r: None,
        undoes: str | None = None,
        effect: Any = None,
    ) -> tuple[T, ChangeRecord]:
        rec = self.changelog.begin(
            operation,
            target_type,
            target_id=target_id,
            target_name=target_name,
            before=before,
            undoes=undoes,
            effect=effect,
        )
        try:
            result = await call()
        except FinoutError as exc:
            self.changelog.fail(rec, f"{type(exc).__name__} {exc.status or ''}".strip())
            raise
        finally:
            if (
                target_type == "virtual_tag"
            ):  # the catalogue caches tags (and their keys), not metadata or endpoints
                self.catalog.invalidate("virtual_tags")
        done = self.changelog.complete(rec, after=after(result), target_id=new_id(result) or target_id)
        return result, done

    async def _live_tag(self, ref: str) -> VirtualTag:
        listed = await self.catalog.resolve_tag(ref)
        return await self.client.get_virtual_tag(listed.id)

    async def _prepare_rules(
        self, rules: Sequence[RuleSpec], default_value: DefaultValue | None, tag_id: str | None
    ) -> tuple[list[VirtualTagRule], list[str]]:
        report = await lint_rules(rules, default_value, self.catalog, tag_id=tag_id)
        if not report.ok:
            raise lint_failure(report)
        wire: list[VirtualTagRule] = []
        for i, (spec, rr) in enumerate(zip(rules, report.rules, strict=True)):
            if rr.filter is None:  # pragma: no cover - ok report always has filters
                raise lint_failure(report)
            try:  # a rule we write gets the documented form: epoch ms (finout-api.md "Basics")
                timeframe = spec.timeframe.in_ms() if spec.timeframe is not None else None
            except ValueError as exc:
                raise InputError(
                    f"Rule {i + 1}'s timeframe: {exc}.", hint="Give epoch milliseconds or ISO dates (2025-01-31)."
                ) from None
            wire.append(VirtualTagRule(to=spec.to, filters=rr.filter, timeframe=timeframe))
        return wire, _warnings(report)

    async def _name_taken(self, name: str, *, except_id: str | None = None) -> VirtualTag | None:
        tags = await self.catalog.virtual_tags(refresh=True)
        for t in tags:
            if t.name.strip().lower() == name.strip().lower() and t.id != except_id:
                return t
        return None

    # ------------------------------------------------------------------ virtual tags

    async def create_tag(
        self, name: str, rules: Sequence[RuleSpec], default_value: str | None, *, dry_run: bool
    ) -> WriteResult:
        name = validate_name(name)
        if default_value is not None:
            default_value = validate_name(default_value, "default value")
        wire, warnings = await self._prepare_rules(rules, default_value, None)
        body = VirtualTagWrite(name=name, rules=wire, default_value=default_value)
        return await self._create_body(body, warnings, dry_run=dry_run)

    async def _create_body(self, body: VirtualTagWrite, warnings: list[str], *, dry_run: bool) -> WriteResult:
        existing = await self._name_taken(body.name)
        if existing is not None:
            live = await self.client.get_virtual_tag(existing.id)
            if same_content(live, body):
                return WriteResult(
                    status="unchanged",
                    tag=_summary(live),
                    warnings=warnings,
                    notes=[
                        f"A virtual tag named {fence(live.name)} with this content already exists; "
                        "nothing was sent."
                    ],
                )
            raise InputError(
                f"A virtual tag named {fence(live.name)} already exists (id {live.id}) with different content.",
                hint=f"To change it call update_virtual_tag(tag={live.id!r}, ...); to keep both, pick another name.",
            )
        if dry_run:
            return WriteResult(
                status="dry_run",
                tag=_body_summary(body, None),
                body=body.wire(),
                warnings=warnings,
                notes=["Nothing was sent. Call again with dry_run=false to create it."],
            )
        created, rec = await self._logged(
            "create_virtual_tag",
            "virtual_tag",
            lambda: self.client.create_virtual_tag(body),
            target_id=None,
            target_name=body.name,
            before=None,
            after=_tag_json,
            new_id=lambda t: t.id,
        )
        return WriteResult(
            status="created",
            change_id=rec.change_id,
            tag=_summary(created),
            body=body.wire(),
            warnings=warnings,
            notes=[f"undo_change({rec.change_id!r}) deletes it again."],
        )

    async def update_tag(
        self,
        ref: str,
        *,
        name: str | None,
        rules: Sequence[RuleSpec] | None,
        default_value: str | None,
        dry_run: bool,
    ) -> WriteResult:
        live = await self._live_tag(ref)
        new_name = validate_name(name) if name is not None else live.name
        if name is not None and (clash := await self._name_taken(new_name, except_id=live.id)):
            raise InputError(
                f"Another virtual tag is already named {fence(clash.name)} (id {clash.id}).",
                hint="Pick a different name.",
            )
        new_default = (
            validate_name(default_value, "default value") if default_value is not None else live.default_value
        )
        warnings: list[str] = []
        if rules is not None:
            wire, warnings = await self._prepare_rules(rules, new_default, live.id)
        else:
            wire = [r.model_copy() for r in live.rules]
        # PUT replaces the tag: everything read and not changed (category, unknown fields) goes back as read
        body = live.write_body(name=new_name, rules=wire, default_value=new_default)
        diff = diff_tag(live, body)
        if same_content(live, body):
            return WriteResult(
                status="unchanged",
                tag=_summary(live),
                diff=diff,
                warnings=warnings,
                notes=["The tag already has this content; nothing was sent."],
            )
        if dry_run:
            return WriteResult(
                status="dry_run",
                tag=_body_summary(body, live.id),
                body=body.wire(),
                diff=diff,
                warnings=warnings,
                notes=[
                    "Nothing was sent. PUT replaces the whole tag; fields you did not give keep their "
                    "current values in this body. Call again with dry_run=false to apply."
                ],
            )
        updated, rec = await self._logged(
            "update_virtual_tag",
            "virtual_tag",
            lambda: self.client.update_virtual_tag(live.id, body),
            target_id=live.id,
            target_name=live.name,
            before=_tag_json(live),
            after=_tag_json,
        )
        return WriteResult(
            status="updated",
            change_id=rec.change_id,
            tag=_summary(updated),
            body=body.wire(),
            diff=diff,
            warnings=warnings,
            notes=[f"undo_change({rec.change_id!r}) restores the previous version."],
        )

    async def clone_tag(self, ref: str, new_name: str, *, dry_run: bool) -> WriteResult:
        live = await self._live_tag(ref)
        body = VirtualTagWrite(
            name=validate_name(new_name),
            rules=[r.model_copy() for r in live.rules],
            default_value=live.default_value,
        )
        result = await self._create_body(body, [], dry_run=dry_run)
        result.notes.append(f"Cloned from {fence(live.name)} (id {live.id}); metadata is not copied.")
        return result

    async def delete_tag(self, ref: str, confirm_name: str, *, dry_run: bool) -> WriteResult:
        live = await self._live_tag(ref)
        if confirm_name != live.name:
            raise InputError(
                f"confirm_name {fence(confirm_name)} does not match the tag's current name {fence(live.name)}.",
                hint="Pass confirm_name exactly equal to the current name to delete it.",
            )
        dependants = [
            t.name
            for t in await self.catalog.virtual_tags(refresh=True)
            if t.id != live.id and any(isinstance(r.to, TagReference) and r.to.key == live.id for r in t.rules)
        ]
        if dependants:
            raise InputError(
                f"Nothing was deleted: the tags {', '.join(fence(n) for n in dependants)} take their value "
                f"from {fence(live.name)}.",
                hint="Update those tags first (update_virtual_tag) so no rule's `to` refers to it.",
            )
        try:
            metadata = (await self.client.get_virtual_tag_metadata(live.id)).metadata
        except NotFoundError:
            metadata = {}
        meta_json = _metadata_json(metadata)
        if dry_run:
            return WriteResult(
                status="dry_run",
                tag=_summary(live),
                notes=[
                    f"Nothing was sent. DELETE /virtual-tags/{live.id} would remove {fence(live.name)} "
                    f"with {len(live.rules)} rules and metadata for {len(metadata)} values; undo_change "
                    "can recreate it (with a new id)."
                ],
            )
        _, rec = await self._logged(
            "delete_virtual_tag",
            "virtual_tag",
            lambda: self.client.delete_virtual_tag(live.id),
            target_id=live.id,
            target_name=live.name,
            before={"tag": _tag_json(live), "metadata": meta_json},
            after=lambda _r: None,
        )
        return WriteResult(
            status="deleted",
            change_id=rec.change_id,
            tag=_summary(live),
            notes=[f"undo_change({rec.change_id!r}) recreates it with its rules and metadata (new id)."],
        )

    # ------------------------------------------------------------------ metadata

    async def update_metadata(
        self, ref: str, values: dict[str, ValueMetadata], mode: Literal["merge", "replace"], *, dry_run: bool
    ) -> WriteResult:
        validate_metadata_values(values)
        listed = await self.catalog.resolve_tag(ref)
        wanted = {e for v in values.values() for e in v.endpoint_ids}
        if wanted:
            known = {e.id: e.name for e in (await self.client.list_endpoints()).endpoints}
            missing = sorted(wanted - set(known))
            if missing:
                raise InputError(
                    f"Unknown endpoint id(s): {', '.join(fence(m) for m in missing)}.",
                    hint="Use ids from list_endpoints: "
                    + ", ".join(f"{i} ({fence(n)})" for i, n in list(known.items())[:10]),
                )
        notes: list[str] = []
        try:
            current: dict[str, ValueMetadata] | None = (
                await self.client.get_virtual_tag_metadata(listed.id)
            ).metadata
        except MalformedResponseError as exc:
            if exc.field is None:  # an unreadable body (cut off, HTML): transient, said as it is
                raise
            if mode == "merge":  # merging onto a read we could not recognise would drop what it holds
                raise InputError(
                    f"Nothing was written: a merge needs the current metadata of {fence(listed.name)}, "
                    f"and Finout's answer was not recognised: {exc}",
                    hint="Run `finout-mcp doctor` to see the shape Finout sends; to set the whole map anyway, "
                    "call again with mode='replace' and every value the tag should keep.",
                ) from None
            current = None
            notes.append(
                "The current metadata could not be read (unrecognised answer), so undo cannot restore it; "
                "replace mode sets exactly the values given."
            )
        new = merge_metadata(current, values) if mode == "merge" and current is not None else dict(values)
        if current is not None:
            new = in_endpoint_style(new, current)
        as_json = _metadata_json(new)
        before_json = _metadata_json(current) if current is not None else None
        removed = sorted(set(current or {}) - set(new))
        if removed:
            notes.append(f"replace mode removes metadata of: {', '.join(fence(r) for r in removed)}.")
        if current is not None and not metadata_mismatches(new, current):
            return WriteResult(
                status="unchanged",
                tag=TagSummary(id=listed.id, name=listed.name),
                metadata=new,
                notes=[*notes, "Metadata already matches; nothing was sent."],
            )
        if dry_run:
            return WriteResult(
                status="dry_run",
                tag=TagSummary(id=listed.id, name=listed.name),
                body=metadata_body(new),
                metadata=new,
                notes=[
                    *notes,
                    "Nothing was sent. PUT replaces all metadata; this body already includes "
                    "what is kept. Call again with dry_run=false to apply.",
                ],
            )
        ack, rec = await self._logged(
            "update_virtual_tag_metadata",
            "virtual_tag_metadata",
            lambda: self.client.set_virtual_tag_metadata(listed.id, new),
            target_id=listed.id,
            target_name=listed.name,
            before={"metadata": before_json} if before_json is not None else None,
            after=lambda _r: {"metadata": as_json},
        )
        await self._verify_metadata(listed.id, listed.name, new, rec.change_id, ack.status, before=current)
        return WriteResult(
            status="updated",
            change_id=rec.change_id,
            tag=TagSummary(id=listed.id, name=listed.name),
            body=metadata_body(new),
            metadata=new,
            notes=[
                *notes,
                "Read back from Finout: it matches what was sent.",
                f"undo_change({rec.change_id!r}) restores the previous metadata.",
            ],
        )

    async def _verify_metadata(
        self,
        tag_id: str,
        tag_name: str,
        sent: dict[str, ValueMetadata],
        change_id: str,
        status: int,
        *,
        before: dict[str, ValueMetadata] | None,
    ) -> None:
        """Read the metadata back after a write; raise :class:`WriteVerificationError` (with the
        change id to undo it) if it is not what was sent."""
        try:
            read = (await self.client.get_virtual_tag_metadata(tag_id)).metadata
            problems = metadata_mismatches(sent, read)
            if problems and before is not None and not metadata_mismatches(before, read):
                problems.insert(0, "it still reads as before, so the write did not take effect")
        except FinoutError as exc:
            problems = [f"it could not be read back ({exc.message})"]
        if problems:
            raise WriteVerificationError(
                f"Finout answered the metadata write for {fence(tag_name)} with {status} (change {change_id}), "
                f"but reading it back does not match what was sent: {'; '.join(problems)}. Check it with "
                f"get_virtual_tag_metadata; undo_change({change_id!r}) restores the previous metadata. If it "
                "persists, run `finout-mcp doctor`.",
                change_id=change_id,
                problems=problems,
            )

    # ------------------------------------------------------------------ endpoints

    async def create_endpoint(
        self, type_: Literal["email", "slack"], name: str, to: str, *, dry_run: bool
    ) -> WriteResult:
        name = validate_name(name, "endpoint name")
        to = validate_email(to) if type_ == "email" else validate_slack_webhook(to)
        body = EndpointCreate.of(type_, name, to)
        existing = [
            e
            for e in (await self.client.list_endpoints()).endpoints
            if e.type == type_ and e.name.strip().lower() == name.lower()
        ]
        if existing:
            e = existing[0]
            if e.target == to:
                return WriteResult(
                    status="unchanged",
                    endpoint=mask_endpoint(e),
                    notes=["An endpoint with this type, name and target exists; nothing was sent."],
                )
            if e.target is None:  # e-mail examples show an empty configuration: the target is not shown
                raise InputError(
                    f"A {type_} endpoint named {fence(name)} already exists (id {e.id}); Finout does not show "
                    "its target, so it cannot be compared with this one.",
                    hint=f"Use its id {e.id} if it is the same; otherwise pick another name "
                    "(the API cannot edit endpoints).",
                )
            raise InputError(
                f"A {type_} endpoint named {fence(name)} already exists (id {e.id}) with another target.",
                hint="Pick another name; the API cannot edit endpoints.",
            )
        masked_body = mask_endpoint(Endpoint(id="(new)", type=type_, name=name, configuration=body.configuration))
        if dry_run:
            return WriteResult(
                status="dry_run",
                endpoint=masked_body,
                notes=[
                    "Nothing was sent. Endpoints cannot be deleted through the API, so check the name and "
                    "target now; call again with dry_run=false to create it."
                ],
            )
        created, rec = await self._logged(
            "create_endpoint",
            "endpoint",
            lambda: self.client.create_endpoint(body),
            target_id=None,
            target_name=name,
            before=None,
            after=lambda e: mask_endpoint(e).model_dump(by_alias=True, mode="json", exclude_none=True),
            new_id=lambda e: e.id,
        )
        return WriteResult(
            status="created",
            change_id=rec.change_id,
            endpoint=mask_endpoint(created),
            notes=["The Finout API cannot delete endpoints: undo means removing it in the Finout UI."],
        )

    # ------------------------------------------------------------------ undo

    async def _live_for(self, target_type: str, tag_id: str | None) -> dict[str, Any] | None:
        if tag_id is None:
            return None
        try:
            if target_type == "virtual_tag_metadata":
                md = (await self.client.get_virtual_tag_metadata(tag_id)).metadata
                return {"metadata": _metadata_json(md)}
            return _tag_json(await self.client.get_virtual_tag(tag_id))
        except NotFoundError:
            return None

    async def undo(self, change_id: str, *, dry_run: bool, force: bool) -> WriteResult:
        rec = self.changelog.get(change_id)
        plan = self.changelog.plan_undo(rec.change_id)
        live = await self._live_for(plan.target_type, plan.target_id)
        problems = drift(rec, live)
        if problems and not force:
            raise InputError(
                f"Undo of {rec.change_id} refused: the target changed since that write: "
                + "; ".join(problems)
                + ".",
                hint="Review the live state (get_virtual_tag); pass force=true to overwrite it anyway.",
            )
        steps_text = [f"{s.action} {s.tag_id or ''}".strip() for s in plan.steps]
        if dry_run:
            first_body = next((s.tag_body or s.metadata for s in plan.steps if s.tag_body or s.metadata), None)
            return WriteResult(
                status="dry_run",
                body=first_body,
                notes=[f"Nothing was sent. Undo would: {', '.join(steps_text)}.", *plan.notes],
            )
        before: dict[str, Any] | None = None
        if plan.before_image == "tag" or plan.before_image == "tag_and_metadata":
            tag_live = await self._live_for("virtual_tag", plan.target_id)
            if plan.before_image == "tag_and_metadata":
                meta = await self._live_for("virtual_tag_metadata", plan.target_id)
                before = {"tag": tag_live, "metadata": (meta or {}).get("metadata", {})}
            else:
                before = tag_live
        elif plan.before_image == "metadata":
            before = live

        written_metadata: list[tuple[str, dict[str, ValueMetadata], int]] = []

        async def run_steps() -> dict[str, Any] | None:
            new_id: str | None = plan.target_id
            after: dict[str, Any] | None = None
            for step in plan.steps:
                if step.action == "delete_virtual_tag":
                    assert step.tag_id is not None
                    await self.client.delete_virtual_tag(step.tag_id)
                    after = None
                elif step.action == "put_virtual_tag":
                    assert step.tag_id is not None and step.tag_body is not None
                    body = VirtualTagWrite.model_validate(step.tag_body)
                    after = _tag_json(await self.client.update_virtual_tag(step.tag_id, body))
                elif step.action == "create_virtual_tag":
                    assert step.tag_body is not None
                    body = VirtualTagWrite.model_validate(step.tag_body)
                    created = await self.client.create_virtual_tag(body)
                    new_id = created.id
                    after = _tag_json(created)
                elif step.action == "put_virtual_tag_metadata":
                    target = step.tag_id or new_id
                    assert target is not None and step.metadata is not None
                    md = {k: ValueMetadata.model_validate(v) for k, v in step.metadata.items()}
                    ack = await self.client.set_virtual_tag_metadata(target, md)
                    written_metadata.append((target, md, ack.status))
                    if plan.target_type == "virtual_tag_metadata":
                        after = {"metadata": step.metadata}
            if after is not None and new_id is not None:
                after.setdefault("id", new_id)
            return after

        after_image, undo_rec = await self._logged(
            "undo",
            plan.target_type,
            run_steps,
            target_id=plan.target_id,
            target_name=plan.target_name,
            before=before,
            after=lambda a: a,
            new_id=lambda a: (a or {}).get("id") if plan.effect == "create_virtual_tag" else None,
            undoes=plan.undoes,
            effect=plan.effect,
        )
        for tag_id, md, status in written_metadata:
            await self._verify_metadata(
                tag_id, plan.target_name or tag_id, md, undo_rec.change_id, status, before=None
            )
        return WriteResult(
            status="undone",
            change_id=undo_rec.change_id,
            tag=TagSummary(
                id=(after_image or {}).get("id") or plan.target_id,
                name=(after_image or {}).get("name") or plan.target_name or "",
            ),
            notes=[
                f"Reverted {rec.change_id}. undo_change({undo_rec.change_id!r}) re-applies it.",
                *plan.notes,
            ],
        )
