"""Append-only change log of every write the server makes, and undo planning.

File: ``<state_dir>/changes.jsonl`` (dir 0700, file 0600), one JSON object per line.

Durability design: **two-phase, append-only.**

1. :meth:`ChangeLog.begin` appends an *intent* line (``status="pending"``) carrying the
   before-image **before** the API call;
2. :meth:`ChangeLog.complete` appends a *done* line with the same ``change_id`` and the
   after-image (and the new id of a created tag) after the call succeeded, or
   :meth:`ChangeLog.fail` a *failed* line if it did not.

Each line is written with one ``os.write`` on an ``O_APPEND`` descriptor (under a thread
lock and, where available, an ``flock`` across processes), then ``fsync``-ed before the
call returns. If the file does not end in ``\\n`` (a previous writer died mid-line) the
new line is prefixed with ``\\n``, so a torn line never swallows the next record.
Loading skips torn or garbled lines with a warning and folds the lines of one
``change_id`` into one record (the last status wins).

A process SIGKILLed at any point therefore leaves a log that loads, and:
- killed before the API call: a pending intent, nothing changed;
- killed after the API call but before the done line: a pending intent that still holds
  the before-image, so an update, delete or metadata change can be undone from it
  (:func:`drift` then reports that the after-state is unconfirmed, and the MCP layer asks
  for ``force``); a create whose id was never recorded is explained (delete it by name);
- completed writes: intent and done lines are both on disk (fsync) before the tool returns.

Records never contain a Slack webhook URL: every string is passed through
:func:`finout_mcp.services.safety.scrub_json` before it is written. The Finout secret key
is never given to this module.

Shapes of ``before``/``after`` per operation (tags as the GET JSON, camelCase):
``create_virtual_tag`` None / tag; ``update_virtual_tag`` tag / tag;
``delete_virtual_tag`` ``{"tag": tag, "metadata": {value: {...}}}`` / None;
``update_virtual_tag_metadata`` ``{"metadata": map}`` / ``{"metadata": map}``;
``create_endpoint`` None / endpoint (masked); ``undo``: the shapes of its ``effect``.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from finout_mcp.api.models import SERVER_OWNED_FIELDS, ValueMetadata, strip_display_names
from finout_mcp.services.errors import InputError
from finout_mcp.services.fencing import fence
from finout_mcp.services.safety import canonical_rule, scrub_json

try:  # POSIX only; on other systems O_APPEND + one write is the guarantee.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

CHANGES_FILE = "changes.jsonl"

Operation = Literal[
    "create_virtual_tag",
    "update_virtual_tag",
    "delete_virtual_tag",
    "update_virtual_tag_metadata",
    "create_endpoint",
    "undo",
]
WriteOperation = Literal[
    "create_virtual_tag", "update_virtual_tag", "delete_virtual_tag", "update_virtual_tag_metadata"
]
TargetType = Literal["virtual_tag", "virtual_tag_metadata", "endpoint"]
Status = Literal["pending", "done", "failed"]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_change_id() -> str:
    """``chg_20261125T120501Z_3f9a0c12d4e5``: UTC time (sortable) + 48 random bits.

    Records of one change share its id, so two writes must never draw the same one: with 24
    bits, a few hundred writes in one second (two busy processes) could collide."""
    return f"chg_{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}_{secrets.token_hex(6)}"


class ChangeRecord(BaseModel):
    change_id: str = Field(default_factory=new_change_id)
    at: str = Field(default_factory=now_iso)
    operation: Operation
    target_type: TargetType
    target_id: str | None = None
    target_name: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    undoes: str | None = None
    effect: WriteOperation | None = Field(
        default=None, description="For undo records: the write the undo actually performed."
    )
    status: Status = "done"
    error: str | None = None
    completed_at: str | None = None


# ----------------------------------------------------------------------------- the log


class ChangeLog:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / CHANGES_FILE
        self._lock = threading.Lock()

    # -- writing

    def _ensure_dir(self) -> None:
        if not self.state_dir.exists():
            self.state_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
            os.chmod(self.state_dir, 0o700)

    def record(self, rec: ChangeRecord) -> ChangeRecord:
        """Append one line (secrets scrubbed), fsync, return the record as written."""
        data = scrub_json(rec.model_dump(mode="json"))
        clean = ChangeRecord.model_validate(data)
        line = (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            self._ensure_dir()
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                st = os.fstat(fd)
                if st.st_mode & 0o077:
                    os.fchmod(fd, 0o600)
                payload = line
                if st.st_size > 0 and os.pread(fd, 1, st.st_size - 1) != b"\n":
                    payload = b"\n" + line
                written = os.write(fd, payload)
                while written < len(payload):  # short write (disk full, signal): finish the line
                    written += os.write(fd, payload[written:])
                os.fsync(fd)
            finally:
                os.close(fd)  # closing releases the flock
        return clean

    def begin(
        self,
        operation: Operation,
        target_type: TargetType,
        *,
        target_id: str | None = None,
        target_name: str | None = None,
        before: dict[str, Any] | None = None,
        undoes: str | None = None,
        effect: WriteOperation | None = None,
    ) -> ChangeRecord:
        """Phase 1: the intent (status pending, before-image), written before the API call."""
        return self.record(
            ChangeRecord(
                operation=operation,
                target_type=target_type,
                target_id=target_id,
                target_name=target_name,
                before=before,
                undoes=undoes,
                effect=effect,
                status="pending",
            )
        )

    def complete(
        self,
        rec: ChangeRecord,
        *,
        after: dict[str, Any] | None = None,
        target_id: str | None = None,
        target_name: str | None = None,
    ) -> ChangeRecord:
        """Phase 2: the API call succeeded; record the after-image (and a created object's id)."""
        done = rec.model_copy(
            update={
                "status": "done",
                "after": after,
                "target_id": target_id or rec.target_id,
                "target_name": target_name or rec.target_name,
                "completed_at": now_iso(),
            }
        )
        return self.record(done)

    def fail(self, rec: ChangeRecord, error: str) -> ChangeRecord:
        """Phase 2: the API call failed; nothing was changed."""
        return self.record(rec.model_copy(update={"status": "failed", "error": error, "completed_at": now_iso()}))

    # -- reading

    def _lines(self) -> builtins.list[ChangeRecord]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out: builtins.list[ChangeRecord] = []
        for n, line in enumerate(raw.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                out.append(ChangeRecord.model_validate(json.loads(line.decode("utf-8"))))
            except (ValueError, ValidationError) as exc:
                log.warning("change log %s: skipping unreadable line %d (%s)", self.path, n, type(exc).__name__)
        return out

    def _records(self) -> dict[str, ChangeRecord]:
        """All records folded by change_id, in order of first appearance."""
        merged: dict[str, ChangeRecord] = {}
        for rec in self._lines():
            prev = merged.get(rec.change_id)
            if prev is None:
                merged[rec.change_id] = rec
                continue
            merged[rec.change_id] = prev.model_copy(
                update={
                    "status": rec.status,
                    "after": rec.after if rec.after is not None else prev.after,
                    "before": prev.before if prev.before is not None else rec.before,
                    "target_id": rec.target_id or prev.target_id,
                    "target_name": rec.target_name or prev.target_name,
                    "error": rec.error,
                    "completed_at": rec.completed_at or prev.completed_at,
                    "effect": prev.effect or rec.effect,
                }
            )
        return merged

    def get(self, change_id: str) -> ChangeRecord:
        rec = self._records().get(change_id.strip())
        if rec is None:
            raise InputError(
                f"No change {fence(change_id)} in the change log at {self.path}. "
                "Use the change_id a write returned."
            )
        return rec

    def list(self, limit: int = 20) -> builtins.list[ChangeRecord]:
        """The newest ``limit`` records, newest first."""
        recs = builtins.list(self._records().values())
        recs.reverse()
        return recs[: max(0, limit)]

    def undone_by(self, change_id: str) -> ChangeRecord | None:
        """The latest completed undo record that undid ``change_id``, if any.

        A pending (unconfirmed) undo does not count: :func:`drift` guards a repeated undo.
        Once that undo is itself undone (a redo), the change counts as live again.
        """
        recs = self._records()
        undos = [
            r for r in recs.values() if r.operation == "undo" and r.undoes == change_id and r.status == "done"
        ]
        for undo in reversed(undos):
            redone = any(
                r.operation == "undo" and r.undoes == undo.change_id and r.status == "done" for r in recs.values()
            )
            if not redone:
                return undo
        return None

    def plan_undo(self, change_id: str) -> UndoPlan:
        rec = self.get(change_id)
        return plan_undo(rec, undone_by=self.undone_by(rec.change_id))


# ----------------------------------------------------------------------------- undo planning

StepAction = Literal["delete_virtual_tag", "put_virtual_tag", "create_virtual_tag", "put_virtual_tag_metadata"]


class UndoStep(BaseModel):
    action: StepAction
    tag_id: str | None = Field(
        default=None, description="Target tag; None on a metadata step after a create: use the new tag's id."
    )
    expected_name: str | None = None
    tag_body: dict[str, Any] | None = Field(default=None, description="POST/PUT body {name, rules, defaultValue}.")
    metadata: dict[str, Any] | None = Field(default=None, description="The value map to PUT as metadata.")


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
        description="What to record as the undo record's before-image: the live tag, the live tag and "
        "its metadata ({'tag','metadata'}), the live {'metadata'}, or nothing."
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
            hint="Inspect the change with the change log and fix the tag by hand.",
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
        notes.append(
            "Deleting the tag also removes its metadata; other tags that refer to it will lose that value."
        )
        return UndoPlan(
            **common,
            effect="delete_virtual_tag",
            target_type="virtual_tag",
            steps=[UndoStep(action="delete_virtual_tag", tag_id=rec.target_id, expected_name=name)],
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
            UndoStep(action="create_virtual_tag", expected_name=tag.get("name"), tag_body=tag_write_body(tag))
        ]
        if metadata:
            steps.append(UndoStep(action="put_virtual_tag_metadata", tag_id=None, metadata=metadata))
        notes.append(
            f"The tag is recreated with a NEW id (the old id was {tag.get('id') or rec.target_id}). "
            "Rules of other tags whose `to` or filters referred to the old id cannot be repaired "
            "automatically: update them."
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
            f"default value is now {fence(str(live.get('defaultValue')))}, "
            f"recorded {fence(str(expected.get('defaultValue')))}"
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

    ``live``: the tag JSON (GET /virtual-tags/{id}; None if it no longer exists) for tag
    changes, ``{"metadata": map}`` for metadata changes. An empty list means the undo would
    not clobber a later edit; otherwise the MCP layer should refuse unless forced.
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
