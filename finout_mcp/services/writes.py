"""Safe writes that stay correct with other writers: validate, plan, check, record, send, read back.

Every write goes through :class:`Writer`:
1. validate everything that can be checked locally (names, rules through the composer and the
   linter, metadata value names, endpoint addresses) and refuse on any error finding;
2. resolve the tag from a **fresh** read (never the cache), read it by id, and check its
   name still matches what was asked for — a tag renamed since is never written by mistake;
3. plan the full body (Finout's PUT replaces the whole object), a readable diff, the
   dependent tags it affects, and a short ``expected_version`` (a hash of the state the plan
   was made on; dry runs return it and the same write accepts it);
4. ``dry_run``: return the plan, send nothing;
5. otherwise, holding the tag's write lock in the change store (shared by every server
   process on the same store): re-read the tag and refuse, showing what changed, if it is no
   longer the state the plan was made on; record the intent with the before-image; send;
   record the step; read back and compare — a difference is reported as another writer's
   change, with both versions.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal

import anyio
from pydantic import BaseModel, Field, field_validator

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
)
from finout_mcp.filters.canonical import stable_json
from finout_mcp.services.catalog import Catalog
from finout_mcp.services.changelog import ChangeStore
from finout_mcp.services.dependencies import Dependents, TagGraph
from finout_mcp.services.diffs import MetadataDiff, TagDiff, diff_metadata, diff_tag, target_text
from finout_mcp.services.errors import InputError, WriteVerificationError
from finout_mcp.services.fencing import fence
from finout_mcp.services.keys import key_index
from finout_mcp.services.lint import LintReport, RuleSpec, lint_rules, reference_findings, rules_from_tag
from finout_mcp.services.readback import metadata_mismatches
from finout_mcp.services.recording import Recording
from finout_mcp.services.results import Envelope
from finout_mcp.services.safety import (
    canonical_rule,
    in_endpoint_style,
    mask_endpoint,
    merge_metadata,
    same_content,
    validate_email,
    validate_metadata_values,
    validate_name,
    validate_slack_webhook,
)
from finout_mcp.services.search import fold, similarity

log = logging.getLogger(__name__)

# Names this close (search.similarity: spelling and shared words) draw a warning on create:
# 'Business line' / 'Business Unit' 0.77, 'Cost center' / 'Cost Centre' 0.91; 'Team copy' / 'Team' 0.67 does not.
SIMILAR_NAME_CUTOFF = 0.75

WriteStatus = Literal["dry_run", "created", "updated", "deleted", "unchanged", "undone", "declined", "cancelled"]

ExpectedVersion = str | None

CHAIN_NOTE = (
    "expected_version is the tag's version as written: pass it to the next update_virtual_tag of this tag "
    "to be sure nobody changed it in between (optional)."
)


class TagSummary(BaseModel):
    id: str | None
    name: str
    default_value: str | None = Field(default=None, description="As a person reads it (diffs.target_text).")
    rules: int | None = Field(default=None, description="Number of rules (None when not known).")

    @field_validator("default_value", mode="before")
    @classmethod
    def _readable(cls, value: Any) -> Any:
        """Another tag's value (as read from Finout, or as a model) reads as text, wherever the summary is built."""
        return target_text(value) if isinstance(value, dict | TagReference) else value


class Conflict(BaseModel):
    """What we sent and what Finout holds now differ: another writer changed it in between."""

    message: str
    sent: dict[str, Any]
    found: dict[str, Any]


class WriteResult(Envelope):
    status: WriteStatus = Field(
        description="What happened; dry_run, declined and cancelled mean nothing was sent."
    )
    change_id: str | None = Field(
        default=None, description="Pass to undo_change to revert this write (None when nothing was written)."
    )
    tag: TagSummary | None = None
    expected_version: str | None = Field(
        default=None,
        description="The version to pass to the next write. On a dry run: the state this plan was made on "
        "(pass it back with dry_run=false to apply exactly this plan; refused if the target changed since). "
        "After an applied write: the target's new version, read back from Finout (None when it is gone or "
        "could not be read back).",
    )
    destructive: bool = Field(
        default=False,
        description="true: this write removes or replaces something (values, rules, a tag, metadata).",
    )
    diff: TagDiff | None = None
    metadata_diff: MetadataDiff | None = None
    dependents: Dependents | None = Field(
        default=None, description="Tags that use this tag, and their conditions this change breaks."
    )
    steps: list[str] = Field(default_factory=list, description="The calls made (or to be made), in order.")
    conflict: Conflict | None = None
    body: dict[str, Any] | None = Field(
        default=None, description="The exact JSON body sent (or to be sent); only with include_body=true."
    )
    endpoint: Endpoint | None = None
    warnings: list[str] = Field(default_factory=list)


# ----------------------------------------------------------------------------- state and versions


def tag_json(tag: VirtualTag) -> dict[str, Any]:
    return tag.model_dump(by_alias=True, exclude_none=True, mode="json")


def metadata_json(metadata: dict[str, ValueMetadata]) -> dict[str, Any]:
    """Metadata as Finout holds it (each value's fields as read or set): what undo sends back."""
    return metadata_body(metadata)


def _tag_canon(tag: VirtualTag | VirtualTagWrite | dict[str, Any] | None) -> Any:
    if tag is None:
        return None
    if isinstance(tag, dict):
        tag = VirtualTag.model_validate({"id": tag.get("id", ""), **tag})
    default = tag.default_value
    return {
        "name": tag.name,
        "defaultValue": default.wire() if isinstance(default, TagReference) else (default or None),
        "rules": [canonical_rule(r) for r in tag.rules],
    }


def _metadata_canon(md: dict[str, ValueMetadata] | dict[str, Any] | None) -> Any:
    out = {}
    for value, m in (md or {}).items():
        vm = m if isinstance(m, ValueMetadata) else ValueMetadata.model_validate(m or {})
        out[value] = vm.comparable()
    return out


def version_of(target_id: str | None, *, tag: Any = None, metadata: Any = None, gone: bool = False) -> str:
    """A short hash of a target's identity and state (what ``expected_version`` carries): a tag
    renamed and replaced by a new one with the old name never has the old one's version."""
    state = {
        "id": target_id,
        "gone": gone,
        "tag": _tag_canon(tag),
        "metadata": _metadata_canon(metadata) if metadata is not None else None,
    }
    text = stable_json(state)
    return "v" + hashlib.sha256(text.encode()).hexdigest()[:10]


def lint_failure(report: LintReport) -> InputError:
    lines: list[str] = []
    for f in report.findings:
        if f.severity == "error":
            lines.append(f.message)
    for r in report.rules:
        for f in r.findings:
            if f.severity == "error":
                lines.append(f"rule {r.index} (to {r.to}): {f.message}")
    shown = "; ".join(lines[:8]) + (f"; and {len(lines) - 8} more" if len(lines) > 8 else "")
    return InputError(
        f"Nothing was written: the rules have {len(lines)} error(s): {shown}.",
        hint="Fix them (compose_filter and lint_virtual_tag show each finding with suggestions) and call again.",
    )


def _warnings(report: LintReport) -> list[str]:
    out = [f.message for f in report.findings if f.severity == "warning"]
    for r in report.rules:
        out.extend(f"rule {r.index}: {f.message}" for f in r.findings if f.severity == "warning")
    return out


def _summary(tag: VirtualTag | VirtualTagWrite, tag_id: str | None = None) -> TagSummary:
    return TagSummary(
        id=tag.id if isinstance(tag, VirtualTag) else tag_id,
        name=tag.name,
        default_value=tag.default_value,  # made readable by TagSummary
        rules=len(tag.rules),
    )


def case_clashes(names: Sequence[str], existing: Sequence[str]) -> list[str]:
    """Warnings for names that differ only in case from another name."""
    out: list[str] = []
    seen: dict[str, str] = {}
    for n in [*existing, *names]:
        folded = n.casefold()
        other = seen.get(folded)
        if other is not None and other != n and n in names:
            out.append(
                f"Metadata value {fence(n)} differs only in case from {fence(other)}: Finout treats them as "
                "two different values. Use the exact spelling the rules produce."
            )
        seen.setdefault(folded, n)
    return out


class Writer:
    def __init__(self, client: FinoutClient, catalog: Catalog, store: ChangeStore, *, actor: str) -> None:
        self.client = client
        self.catalog = catalog
        self.store = store
        self.actor = actor

    # ------------------------------------------------------------------ reading the target

    async def fresh_tag(self, ref: str) -> VirtualTag:
        """The tag ``ref`` names, resolved from a fresh list and read by id; its name must still match."""
        listed = await self.catalog.resolve_tag(ref, fresh=True)
        try:
            live = await self.client.get_virtual_tag(listed.id)
        except NotFoundError:
            raise InputError(
                f"Virtual tag {fence(listed.name)} (id {listed.id}) was deleted a moment ago; nothing was sent.",
                hint="Call list_virtual_tags to see the current tags.",
            ) from None
        self.check_identity(ref, live)
        return live

    @staticmethod
    def check_identity(ref: str, live: VirtualTag) -> None:
        ref = ref.strip()
        if ref != live.id and ref.casefold() != live.name.casefold():
            raise InputError(
                f"{fence(ref)} resolved to tag id {live.id}, which is now named {fence(live.name)}: it was "
                "renamed a moment ago. Nothing was sent.",
                hint="Call list_virtual_tags and pass the id of the tag you mean.",
            )

    async def tag_graph(self, *, fresh: bool = False) -> TagGraph:
        """Every tag's references. A write resolves its target with a fresh list first (which
        refreshes the cached one), so the cached list is as fresh as that read unless ``fresh``."""
        return TagGraph(await self.catalog.virtual_tags(refresh=fresh))

    async def metadata_of(self, tag_id: str) -> dict[str, ValueMetadata]:
        try:
            return (await self.client.get_virtual_tag_metadata(tag_id)).metadata
        except NotFoundError:
            return {}

    # ------------------------------------------------------------------ version checks

    def check_expected(
        self,
        expected: ExpectedVersion,
        current: str,
        describe: Callable[[dict[str, Any] | None], str],
        what: str = "the tag",
    ) -> None:
        """Refuse when a dry run's ``expected_version`` is not the current version (showing what changed)."""
        if expected is None or expected.strip() == current:
            return
        planned = self.store.planned_version(expected.strip())
        changes = describe(planned) if planned is not None else None
        detail = f": {changes}" if changes else " (that version is not in this server's change log)"
        raise InputError(
            f"Nothing was sent: {what} changed since the dry run you confirmed "
            f"(expected_version {expected.strip()}, now {current}){detail}.",
            hint="Run the dry run again, show the user the new diff, and apply with its expected_version.",
        )

    def remember(self, version: str, target_id: str | None, state: dict[str, Any]) -> None:
        try:
            self.store.remember_version(version, target_id, state)
        except Exception as exc:  # a dry run still answers; only the 'what changed' detail is lost
            log.warning("change log: could not remember version %s (%s)", version, type(exc).__name__)

    @staticmethod
    def describe_tag_change(before: dict[str, Any] | None, now: VirtualTag) -> str:
        if before is None or "tag" not in before:
            return ""
        old = VirtualTag.model_validate(before["tag"])
        d = diff_tag(old, now)
        lines = [d.summary]
        for r in d.rules:
            lines.extend(r.value_changes)
        return " ".join(lines)

    # ------------------------------------------------------------------ virtual tags

    async def _prepare_rules(
        self,
        rules: Sequence[RuleSpec],
        default_value: DefaultValue | None,
        tag_id: str | None,
        before: Sequence[RuleSpec] = (),
    ) -> tuple[list[VirtualTagRule], list[str]]:
        report = await lint_rules(rules, default_value, self.catalog, tag_id=tag_id, before=before)
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

    async def _check_default_reference(self, ref: TagReference, tag_id: str) -> None:
        tags = (await self.tag_graph()).tags  # as fresh as the list the update's target was resolved from
        errors = reference_findings(ref, "The default value", "default_value", tags, tag_id)
        if errors:
            raise InputError(" ".join(f.message for f in errors), hint="Nothing was sent; fix the default value.")

    async def _name_taken(
        self, name: str, *, except_id: str | None = None, fresh: bool = True
    ) -> VirtualTag | None:
        """A tag (other than ``except_id``) with this name, any case; from a fresh list unless the
        caller has just read one (``fresh=False``)."""
        tags = await self.catalog.virtual_tags(refresh=fresh)
        for t in tags:
            if t.name.strip().lower() == name.strip().lower() and t.id != except_id:
                return t
        return None

    async def create_tag(
        self,
        name: str,
        rules: Sequence[RuleSpec],
        default_value: DefaultValue | None,
        *,
        dry_run: bool,
        include_body: bool = False,
    ) -> WriteResult:
        name = validate_name(name)
        if isinstance(default_value, str):
            default_value = validate_name(default_value, "default value")
        wire, warnings = await self._prepare_rules(rules, default_value, None)
        body = VirtualTagWrite(name=name, rules=wire, default_value=default_value)
        return await self._create_body(body, warnings, dry_run=dry_run, include_body=include_body)

    async def _similar_names(self, name: str) -> list[str]:
        """A warning per existing tag whose name is close to a new one ('Business line' beside
        'Business Unit'): a user who meant that tag wants update_virtual_tag, not a second tag."""
        folded = fold(name)
        close = [
            t for t in await self.catalog.virtual_tags() if similarity(folded, fold(t.name)) >= SIMILAR_NAME_CUTOFF
        ]
        return [
            f"A virtual tag with a similar name exists: {fence(t.name)} (id {t.id}). If you meant that tag, "
            "change it with update_virtual_tag instead of creating a second one."
            for t in close
        ]

    async def _creation_diff(self, body: VirtualTagWrite) -> TagDiff:
        """A create as a diff from nothing: every rule readable ('filter → value'), the values it produces."""
        graph = await self.tag_graph()
        new = VirtualTag(id="", name=body.name, rules=body.rules, default_value=body.default_value)
        return diff_tag(
            VirtualTag(id="", name=body.name, rules=[], default_value=None),
            body,
            key_index(self.catalog, await self.catalog.keys()),
            tag_names={t.id: t.name for t in graph.tags.values()},
            outputs_after=sorted(graph.outputs(new)),
        )

    async def _create_body(
        self,
        body: VirtualTagWrite,
        warnings: list[str],
        *,
        dry_run: bool,
        include_body: bool,
        intent: str = "",
        similar_names: bool = True,  # a clone is named after its source on purpose
    ) -> WriteResult:
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
        steps = [f"POST /virtual-tags {fence(body.name)} ({len(body.rules)} rules)"]
        if similar_names:
            warnings = [*warnings, *await self._similar_names(body.name)]
        if dry_run:
            return WriteResult(
                status="dry_run",
                tag=_summary(body),
                diff=await self._creation_diff(body),
                steps=steps,
                body=body.wire() if include_body else None,
                warnings=warnings,
                notes=["Nothing was sent. Call again with dry_run=false to create it."],
            )
        recording = Recording.start(
            self.store,
            "create_virtual_tag",
            "virtual_tag",
            actor=self.actor,
            intent=intent or f"create tag {fence(body.name)} with {len(body.rules)} rules",
            target_id=None,
            target_name=body.name,
            before=None,
        )
        try:
            created = await recording.step(
                steps[0],
                lambda: self.client.create_virtual_tag(body),
                action="create_virtual_tag",
                target_id=None,
                new_id=lambda t: t.id,
            )
        finally:
            self.catalog.invalidate("virtual_tags")
        recording.done(after=tag_json(created), target_id=created.id)
        return WriteResult(
            status="created",
            change_id=recording.change_id,
            tag=_summary(created),
            expected_version=version_of(created.id, tag=created),
            steps=recording.happened,
            body=body.wire() if include_body else None,
            warnings=warnings,
            notes=[f"undo_change({recording.change_id!r}) deletes it again.", CHAIN_NOTE, *recording.notes()],
        )

    async def plan_update(
        self,
        ref: str,
        *,
        name: str | None,
        rules: Sequence[RuleSpec] | None,
        default_value: DefaultValue | None,
        include_body: bool = False,
    ) -> tuple[VirtualTag, VirtualTagWrite, WriteResult]:
        """The update as a dry-run result (plus the live tag and the body), sending nothing."""
        live = await self.fresh_tag(ref)
        new_name = validate_name(name) if name is not None else live.name
        # fresh_tag has just read a fresh list
        if name is not None and (clash := await self._name_taken(new_name, except_id=live.id, fresh=False)):
            raise InputError(
                f"Another virtual tag is already named {fence(clash.name)} (id {clash.id}).",
                hint="Pick a different name.",
            )
        new_default = (
            validate_name(default_value, "default value") if isinstance(default_value, str) else default_value
        )
        if new_default is None:
            new_default = live.default_value
        warnings: list[str] = []
        if rules is not None:
            wire, warnings = await self._prepare_rules(rules, new_default, live.id, rules_from_tag(live))
        else:
            wire = [r.model_copy() for r in live.rules]
            if isinstance(default_value, TagReference):  # the rules are not linted: check the reference here
                await self._check_default_reference(default_value, live.id)
        # PUT replaces the tag: everything read and not changed (category, unknown fields) goes back as read
        body = live.write_body(name=new_name, rules=wire, default_value=new_default)
        graph = await self.tag_graph()
        after_tag = VirtualTag(id=live.id, name=body.name, rules=body.rules, default_value=body.default_value)
        before_out = sorted(graph.outputs(live))
        after_out = sorted(graph.outputs(after_tag))
        diff = diff_tag(
            live,
            body,
            # display names for the rules' readable form; unchanged rules are not shown, and the lint
            # of new rules has loaded the keys already (a tag write drops them from the cache)
            key_index(self.catalog, await self.catalog.keys()) if rules is not None else None,
            tag_names={t: n for t, n in ((x.id, x.name) for x in graph.tags.values())},
            outputs_before=before_out,
            outputs_after=after_out,
            include_filters=include_body,
        )
        deps = graph.dependents(live.id, set(after_out))
        for b in deps.broken:
            what = "would match nothing" if b.matches_nothing else "would lose values"
            warnings.append(
                f"Dependent tag {fence(b.tag_name)} rule {b.rule} ({b.condition}) {what}: this change stops "
                f"producing {', '.join(fence(v) for v in b.missing)}. Update that tag too."
            )
        if diff.values_removed:
            metadata = await self.metadata_of(live.id)
            orphaned = [v for v in diff.values_removed if v in metadata]
            if orphaned:
                warnings.append(
                    "Metadata stays on values no rule would produce anymore: "
                    + ", ".join(fence(v) for v in orphaned)
                    + ". Move it with update_virtual_tag_metadata if the value was renamed."
                )
        # PUT replaces the rules: asking is due when values disappear or rules are removed or rewritten
        destructive = bool(diff.values_removed or diff.counts["removed"] or diff.counts["changed"])
        version = version_of(live.id, tag=live)
        result = WriteResult(
            status="dry_run",
            tag=_summary(body, live.id),
            expected_version=version,
            destructive=destructive,
            diff=diff,
            dependents=deps if deps.tags else None,
            steps=[f"PUT /virtual-tags/{live.id} (replaces the whole tag)"],
            body=body.wire() if include_body else None,
            warnings=warnings,
            notes=[
                "Nothing was sent. Fields you did not give keep their current values. To apply exactly this, "
                f"call again with dry_run=false and expected_version={version!r}."
            ],
        )
        return live, body, result

    async def update_tag(
        self,
        ref: str,
        *,
        name: str | None,
        rules: Sequence[RuleSpec] | None,
        default_value: DefaultValue | None,
        dry_run: bool,
        expected_version: ExpectedVersion = None,
        include_body: bool = False,
    ) -> WriteResult:
        live, body, plan = await self.plan_update(
            ref, name=name, rules=rules, default_value=default_value, include_body=include_body
        )
        version = plan.expected_version or version_of(live.id, tag=live)
        self.check_expected(expected_version, version, lambda st: self.describe_tag_change(st, live))
        if same_content(live, body):
            plan.status = "unchanged"
            plan.notes = ["The tag already has this content; nothing was sent."]
            return plan
        if dry_run:
            self.remember(version, live.id, {"tag": tag_json(live)})
            return plan
        async with self.store.tag_lock([live.id]):
            now = await self._reread_unchanged(live)
            recording = Recording.start(
                self.store,
                "update_virtual_tag",
                "virtual_tag",
                actor=self.actor,
                intent=f"update tag {fence(live.name)}: {plan.diff.summary if plan.diff else ''}",
                target_id=live.id,
                target_name=live.name,
                before=tag_json(now),
            )
            try:
                await recording.step(
                    plan.steps[0],
                    lambda: self.client.update_virtual_tag(live.id, body),
                    action="put_virtual_tag",
                    target_id=live.id,
                )
            finally:
                self.catalog.invalidate("virtual_tags")
            read_back, conflict = await self._read_back(live.id, body)
            recording.done(after=tag_json(read_back) if read_back else None, target_name=body.name)
        plan.status = "updated"
        plan.change_id = recording.change_id
        plan.steps = recording.happened
        plan.conflict = conflict
        plan.expected_version = version_of(live.id, tag=read_back) if read_back else None
        plan.tag = _summary(read_back) if read_back else _summary(body, live.id)
        plan.notes = [
            f"undo_change({recording.change_id!r}) restores the previous version.",
            CHAIN_NOTE,
            *recording.notes(),
        ]
        if conflict:
            plan.warnings.append(conflict.message)
        if read_back is None:
            plan.warnings.append(
                "Finout accepted the update, but the tag could not be read back to confirm it; check it with "
                "get_virtual_tag."
            )
        return plan

    async def _reread_unchanged(self, planned: VirtualTag) -> VirtualTag:
        """Under the lock, just before sending: the tag must still be what the plan was made on."""
        try:
            now = await self.client.get_virtual_tag(planned.id)
        except NotFoundError:
            raise InputError(
                f"Nothing was sent: tag {fence(planned.name)} (id {planned.id}) was deleted by another writer "
                "while this write was being prepared.",
                hint="Call list_virtual_tags to see the current tags.",
            ) from None
        if version_of(now.id, tag=now) != version_of(planned.id, tag=planned):
            raise InputError(
                f"Nothing was sent: tag {fence(planned.name)} was changed by another writer while this write "
                f"was being prepared: {self.describe_tag_change({'tag': tag_json(planned)}, now)}",
                hint="Read it again (get_virtual_tag), redo the dry run on the current version, and apply that.",
            )
        return now

    async def _read_back(self, tag_id: str, body: VirtualTagWrite) -> tuple[VirtualTag | None, Conflict | None]:
        try:
            back = await self.client.get_virtual_tag(tag_id)
        except Exception as exc:
            log.warning("read-back of tag %s failed (%s)", tag_id, type(exc).__name__)
            return None, None
        if same_content(back, body):
            return back, None
        return back, Conflict(
            message=(
                f"Read-back differs from what was sent: another writer changed tag {fence(back.name)} right after "
                f"this write ({self.describe_tag_change({'tag': body.wire() | {'id': tag_id}}, back)}). Both "
                "versions are in `conflict`; check with the user which one should stay."
            ),
            sent=body.wire(),
            found=tag_json(back),
        )

    async def clone_tag(
        self, ref: str, new_name: str, *, dry_run: bool, include_body: bool = False
    ) -> WriteResult:
        live = await self.fresh_tag(ref)
        body = VirtualTagWrite(
            name=validate_name(new_name),
            rules=[r.model_copy() for r in live.rules],
            default_value=live.default_value,
        )
        result = await self._create_body(
            body,
            [],
            dry_run=dry_run,
            include_body=include_body,
            intent=f"clone tag {fence(live.name)} as {fence(new_name)}",
            similar_names=False,
        )
        result.notes.append(f"Cloned from {fence(live.name)} (id {live.id}); metadata is not copied.")
        return result

    async def plan_delete(
        self, ref: str, confirm_name: str, *, force: bool
    ) -> tuple[VirtualTag, dict[str, ValueMetadata], WriteResult]:
        live = await self.fresh_tag(ref)
        if confirm_name != live.name:
            raise InputError(
                f"confirm_name {fence(confirm_name)} does not match the tag's current name {fence(live.name)}.",
                hint="Pass confirm_name exactly equal to the current name to delete it.",
            )
        graph = await self.tag_graph()
        refs = graph.references_to(live.id)
        deps = graph.dependents(live.id, set())
        if refs and not force:
            raise InputError(
                f"Nothing was deleted: {len(refs)} reference(s) from other tags use {fence(live.name)}: "
                + "; ".join(r.describe() for r in refs)
                + ".",
                hint="Update those tags first so they no longer refer to it, or pass force=true to delete it "
                "anyway (their conditions then match nothing and their `to` points at a missing tag).",
            )
        metadata = await self.metadata_of(live.id)
        warnings = (
            [f"force=true: these references will point at a deleted tag: {'; '.join(r.describe() for r in refs)}."]
            if refs
            else []
        )
        version = version_of(live.id, tag=live, metadata=metadata)
        result = WriteResult(
            status="dry_run",
            tag=_summary(live),
            expected_version=version,
            destructive=True,
            dependents=deps if deps.tags else None,
            steps=[f"DELETE /virtual-tags/{live.id}"],
            warnings=warnings,
            notes=[
                f"Nothing was sent. This removes {fence(live.name)} with {len(live.rules)} rules and metadata "
                f"for {len(metadata)} values; undo_change can recreate it (with a new id, and references "
                f"repointed). To apply exactly this, call again with dry_run=false and "
                f"expected_version={version!r}."
            ],
        )
        return live, metadata, result

    async def delete_tag(
        self,
        ref: str,
        confirm_name: str,
        *,
        dry_run: bool,
        force: bool = False,
        expected_version: ExpectedVersion = None,
    ) -> WriteResult:
        live, metadata, plan = await self.plan_delete(ref, confirm_name, force=force)
        assert plan.expected_version is not None
        self.check_expected(expected_version, plan.expected_version, lambda st: self.describe_tag_change(st, live))
        if dry_run:
            self.remember(plan.expected_version, live.id, {"tag": tag_json(live)})
            return plan
        async with self.store.tag_lock([live.id]):
            now = await self._reread_unchanged(live)
            recording = Recording.start(
                self.store,
                "delete_virtual_tag",
                "virtual_tag",
                actor=self.actor,
                intent=f"delete tag {fence(live.name)}" + (" (forced past references)" if plan.warnings else ""),
                target_id=live.id,
                target_name=live.name,
                before={"tag": tag_json(now), "metadata": metadata_json(metadata)},
            )
            try:
                await recording.step(
                    plan.steps[0],
                    lambda: self.client.delete_virtual_tag(live.id),
                    action="delete_virtual_tag",
                    target_id=live.id,
                )
            finally:
                self.catalog.invalidate("virtual_tags")
            recording.done(after=None)
        plan.status = "deleted"
        plan.expected_version = None  # the tag is gone: there is no next write to chain
        plan.change_id = recording.change_id
        plan.steps = recording.happened
        plan.notes = [
            f"undo_change({recording.change_id!r}) recreates it with its rules and metadata (new id) and repoints "
            "the tags that referred to it.",
            *recording.notes(),
        ]
        return plan

    # ------------------------------------------------------------------ metadata

    async def plan_metadata(
        self, ref: str, values: dict[str, ValueMetadata], mode: Literal["merge", "replace"]
    ) -> tuple[VirtualTag, dict[str, ValueMetadata] | None, dict[str, ValueMetadata], WriteResult]:
        validate_metadata_values(values)
        live = await self.fresh_tag(ref)
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
            read: dict[str, ValueMetadata] | None = await self.metadata_of(live.id)
        except MalformedResponseError as exc:
            if exc.field is None:  # an unreadable body (cut off, HTML): transient, said as it is
                raise
            if mode == "merge":  # merging onto a read we could not recognise would drop what it holds
                raise InputError(
                    f"Nothing was written: a merge needs the current metadata of {fence(live.name)}, "
                    f"and Finout's answer was not recognised: {exc}",
                    hint="Run `finout-mcp doctor` to see the shape Finout sends; to set the whole map anyway, "
                    "call again with mode='replace' and every value the tag should keep.",
                ) from None
            read = None
            notes.append(
                "The current metadata could not be read (unrecognised answer), so undo cannot restore it; "
                "replace mode sets exactly the values given."
            )
        current = read or {}

        def shape() -> tuple[dict[str, ValueMetadata], Any]:
            merged = merge_metadata(current, values) if mode == "merge" and read is not None else dict(values)
            if read is not None:
                merged = in_endpoint_style(merged, read)
            return merged, diff_metadata(current, merged)

        # Thousands of values take a while to merge and compare: not on the event loop.
        new, mdiff = await anyio.to_thread.run_sync(shape)
        graph = await self.tag_graph()
        outputs = graph.outputs(live)
        warnings = case_clashes(list(values), [*outputs, *(v for v in current if v not in values)])
        unproduced = [v for v in values if v not in outputs]
        if unproduced:
            warnings.append(
                "No rule of this tag produces "
                + ", ".join(fence(v) for v in unproduced)
                + ": that metadata would never apply. Values it produces: "
                + (", ".join(fence(v) for v in sorted(outputs)[:20]) or "none")
                + "."
            )
        version = version_of(live.id, metadata=current)
        destructive = mode == "replace" or mdiff.removes_or_overwrites
        result = WriteResult(
            status="dry_run",
            tag=_summary(live),
            expected_version=version,
            destructive=destructive,
            metadata_diff=mdiff,
            steps=[f"PUT /virtual-tags/{live.id}/metadata (replaces all of the tag's metadata)"],
            warnings=warnings,
            notes=[
                *notes,
                "Nothing was sent. The body holds the whole map (what is kept too). To apply exactly this, call "
                f"again with dry_run=false and expected_version={version!r}.",
            ],
        )
        return live, read, new, result

    async def update_metadata(
        self,
        ref: str,
        values: dict[str, ValueMetadata],
        mode: Literal["merge", "replace"],
        *,
        dry_run: bool,
        expected_version: ExpectedVersion = None,
        include_body: bool = False,
    ) -> WriteResult:
        live, read, new, plan = await self.plan_metadata(ref, values, mode)
        assert plan.expected_version is not None
        current = read or {}

        def describe(state: dict[str, Any] | None) -> str:
            if not state or "metadata" not in state:
                return ""
            old = {k: ValueMetadata.model_validate(v) for k, v in state["metadata"].items()}
            return diff_metadata(old, current).summary

        self.check_expected(expected_version, plan.expected_version, describe, "the metadata")
        if include_body:
            plan.body = metadata_json(new)
        if read is not None and not metadata_mismatches(new, read):
            plan.status = "unchanged"
            plan.notes = ["Metadata already matches; nothing was sent."]
            return plan
        if dry_run:
            self.remember(plan.expected_version, live.id, {"metadata": metadata_json(current)})
            return plan
        async with self.store.tag_lock([live.id]):
            if read is not None:
                now = await self.metadata_of(live.id)
                if _metadata_canon(now) != _metadata_canon(read):
                    raise InputError(
                        f"Nothing was sent: the metadata of {fence(live.name)} was changed by another writer while "
                        f"this write was being prepared: {diff_metadata(read, now).summary}",
                        hint="Redo the dry run on the current metadata and apply that.",
                    )
            summary = plan.metadata_diff.summary if plan.metadata_diff else ""
            recording = Recording.start(
                self.store,
                "update_virtual_tag_metadata",
                "virtual_tag_metadata",
                actor=self.actor,
                intent=f"{mode} metadata of tag {fence(live.name)}: {summary}",
                target_id=live.id,
                target_name=live.name,
                before={"metadata": metadata_json(read)} if read is not None else None,
            )
            ack = await recording.step(
                plan.steps[0],
                lambda: self.client.set_virtual_tag_metadata(live.id, new),
                action="put_virtual_tag_metadata",
                target_id=live.id,
            )
            back = await self._metadata_read_back(live.id)
            recording.done(after={"metadata": metadata_json(back if isinstance(back, dict) else new)})
        self.verify_metadata(live.name, new, back, recording.change_id, ack.status, before=read)
        plan.status = "updated"
        plan.expected_version = version_of(live.id, metadata=back)  # verified: back is the read-back map
        plan.change_id = recording.change_id
        plan.steps = recording.happened
        plan.notes = [
            "Read back from Finout: it matches what was sent.",
            f"undo_change({recording.change_id!r}) restores the previous metadata.",
            *recording.notes(),
        ]
        return plan

    async def _metadata_read_back(self, tag_id: str) -> dict[str, ValueMetadata] | FinoutError:
        try:
            return (await self.client.get_virtual_tag_metadata(tag_id)).metadata
        except FinoutError as exc:
            return exc

    @staticmethod
    def verify_metadata(
        tag_name: str,
        sent: dict[str, ValueMetadata],
        read: dict[str, ValueMetadata] | FinoutError,
        change_id: str,
        status: int,
        *,
        before: dict[str, ValueMetadata] | None,
    ) -> None:
        """Compare the metadata read back after a write with what was sent; raise
        :class:`WriteVerificationError` (naming the change id to undo it) if it differs — Finout read
        the body another way, or another writer changed it in between."""
        if isinstance(read, FinoutError):
            problems = [f"it could not be read back ({read.message})"]
        else:
            problems = metadata_mismatches(sent, read)
            if problems and before is not None and not metadata_mismatches(before, read):
                problems.insert(0, "it still reads as before, so the write did not take effect")
        if problems:
            raise WriteVerificationError(
                f"Finout answered the metadata write for {fence(tag_name)} with {status} (change {change_id}), "
                f"but reading it back does not match what was sent: {'; '.join(problems)} (Finout read the body "
                "another way, or another writer changed it in between). Check it with get_virtual_tag_metadata; "
                f"undo_change({change_id!r}) restores the previous metadata. If it persists, run "
                "`finout-mcp doctor`.",
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
                steps=[f"POST /endpoints ({type_} {fence(name)})"],
                notes=[
                    "Nothing was sent. Endpoints cannot be deleted through the API, so check the name and "
                    "target now; call again with dry_run=false to create it."
                ],
            )
        recording = Recording.start(
            self.store,
            "create_endpoint",
            "endpoint",
            actor=self.actor,
            intent=f"create {type_} endpoint {fence(name)}",
            target_id=None,
            target_name=name,
            before=None,
        )
        created = await recording.step(
            f"POST /endpoints ({type_} {fence(name)})",
            lambda: self.client.create_endpoint(body),
            action="create_endpoint",
            target_id=None,
            new_id=lambda e: e.id,
        )
        recording.done(
            after=mask_endpoint(created).model_dump(by_alias=True, mode="json", exclude_none=True),
            target_id=created.id,
        )
        return WriteResult(
            status="created",
            change_id=recording.change_id,
            endpoint=mask_endpoint(created),
            steps=recording.happened,
            notes=[
                "The Finout API cannot delete endpoints: undo means removing it in the Finout UI.",
                *recording.notes(),
            ],
        )
