"""Readable, compact diffs of what a write changes: rules and metadata.

A tag diff names each changed rule once, in its readable form before and after, with the
value-level changes (``Account Name: +staging``) and the ``to`` change; unchanged rules are
only counted and listed by position. The raw filters are included only on request
(``include_filters``), so a one-account change does not repeat the whole rule twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from difflib import SequenceMatcher
from typing import Any, Literal

from pydantic import BaseModel, Field

from finout_mcp.api.models import (
    VIRTUAL_TAGS,
    DefaultValue,
    TagReference,
    ValueMetadata,
    VirtualTag,
    VirtualTagRule,
    VirtualTagWrite,
    rule_number,
)
from finout_mcp.filters.canonical import strip_display_names
from finout_mcp.filters.render import render
from finout_mcp.filters.tree import leaf_values, wire_leaves
from finout_mcp.filters.vocabulary import READABLE_OPS
from finout_mcp.services.fencing import fence, neutralise
from finout_mcp.services.keys import KeyIndex
from finout_mcp.services.safety import canonical_rule

ChangeKind = Literal["added", "removed", "changed", "unchanged", "moved"]


class RuleDiff(BaseModel):
    index: int = Field(description="Rule number (1-based) in the new rules (in the old rules for a removed rule).")
    change: ChangeKind
    before_index: int | None = Field(default=None, description="Rule number (1-based) before; None if added.")
    after_index: int | None = Field(default=None, description="Rule number (1-based) after; None if removed.")
    before_to: str | None = None
    after_to: str | None = None
    before: str | None = Field(default=None, description="The rule before, readable: 'filter → value'.")
    after: str | None = Field(default=None, description="The rule after, readable.")
    value_changes: list[str] = Field(
        default_factory=list, description="What changed inside the rule, e.g. 'Account Name: +staging'."
    )
    before_filters: dict[str, Any] | None = None
    after_filters: dict[str, Any] | None = None


class TagDiff(BaseModel):
    name_changed: bool
    before_name: str
    after_name: str
    default_changed: bool
    before_default: str | None
    after_default: str | None
    rules: list[RuleDiff] = Field(description="Only the rules that changed (added, removed, changed, moved).")
    unchanged_rules: list[int] = Field(default_factory=list, description="1-based positions of unchanged rules.")
    counts: dict[str, int]
    values_added: list[str] = Field(default_factory=list, description="Values the tag newly produces.")
    values_removed: list[str] = Field(default_factory=list, description="Values the tag no longer produces.")
    summary: str

    def rule_lines(self) -> list[str]:
        """One line per changed rule, by its number: 'rule 1: Account Name: +staging'."""
        out = []
        for r in self.rules:
            n = r.after_index if r.after_index is not None else r.index
            if r.value_changes:
                out.append(f"rule {n}: {'; '.join(r.value_changes)}")
            else:
                out.append(f"rule {n} {r.change}: {r.after or r.before or ''}")
        return out

    def without_filters(self) -> TagDiff:
        """The diff without each rule's raw filter JSON (shown only with include_body=true)."""
        return self.model_copy(
            update={
                "rules": [r.model_copy(update={"before_filters": None, "after_filters": None}) for r in self.rules]
            }
        )


def show(value: str) -> str:
    """Account data in diff text: as is when harmless, fenced when it carries control or fence characters."""
    return fence(value) if neutralise(value) != value else value


def target_text(
    to: DefaultValue | Mapping[str, Any] | None, tag_names: Mapping[str, str] | None = None
) -> str | None:
    """How a rule's ``to`` or a tag's default value reads to a person: a value as is, a reference
    to another tag (a model, or the object as read from Finout) as that tag's (fenced) name and id
    — the one rendering that lint, list, get, the composer, write results, undo, impact estimates
    and the diffs share (``tag_names``: tag id -> name, when known)."""
    if isinstance(to, Mapping):
        to = TagReference.model_validate(to)
    if isinstance(to, TagReference):
        if to.cost_center != VIRTUAL_TAGS:
            return f"value of {to.cost_center}.{to.key}"
        name = (tag_names or {}).get(to.key)
        return f"value of tag {fence(name)} ({to.key})" if name else f"value of tag {to.key}"
    return to


def _to_text(to: str | TagReference, tag_names: Mapping[str, str]) -> str:
    """A rule's ``to`` in diff text: :func:`target_text`, a value fenced when it carries control or fence characters."""
    return show(to) if isinstance(to, str) else target_text(to, tag_names) or ""


def _rule_obj(rule: VirtualTagRule | dict[str, Any]) -> VirtualTagRule:
    return rule if isinstance(rule, VirtualTagRule) else VirtualTagRule.model_validate(rule)


def _no_display_name(cost_center: str, key: str) -> str | None:
    return None


def value_changes(before: Any, after: Any, label: Callable[[str, str, dict[str, Any]], str]) -> list[str]:
    """``Account Name: +staging, -dev`` per key whose values changed; operator changes spelled out."""

    def grouped(flt: Any) -> dict[tuple[str, str], list[tuple[str, list[str]]]]:
        out: dict[tuple[str, str], list[tuple[str, list[str]]]] = {}
        for _, leaf in wire_leaves(flt):
            pair = (str(leaf.get("costCenter")), str(leaf.get("key")))
            out.setdefault(pair, []).append((str(leaf.get("operator")), [show(v) for v in leaf_values(leaf)]))
        return out

    b, a = grouped(before), grouped(after)
    lines: list[str] = []
    leaves_by_pair = {
        (str(x.get("costCenter")), str(x.get("key"))): x for _, x in (*wire_leaves(before), *wire_leaves(after))
    }
    for pair in [*b, *(p for p in a if p not in b)]:
        name = show(label(pair[0], pair[1], leaves_by_pair[pair]))
        bs, as_ = b.get(pair, []), a.get(pair, [])
        if bs == as_:
            continue
        if not bs:
            lines.append(
                f"{name}: new condition " + "; ".join(f"{READABLE_OPS.get(o, o)} [{', '.join(v)}]" for o, v in as_)
            )
            continue
        if not as_:
            lines.append(f"{name}: condition removed")
            continue
        if [o for o, _ in bs] == [o for o, _ in as_]:
            bv = [v for _, vs in bs for v in vs]
            av = [v for _, vs in as_ for v in vs]
            parts = [f"+{v}" for v in av if v not in bv] + [f"-{v}" for v in bv if v not in av]
            lines.append(f"{name}: {', '.join(parts)}" if parts else f"{name}: values reordered")
            continue
        old = "; ".join(f"{READABLE_OPS.get(o, o)} [{', '.join(v)}]" for o, v in bs)
        new = "; ".join(f"{READABLE_OPS.get(o, o)} [{', '.join(v)}]" for o, v in as_)
        lines.append(f"{name}: {old} → {new}")
    return lines


def diff_rules(
    before: Sequence[VirtualTagRule | dict[str, Any]],
    after: Sequence[VirtualTagRule | dict[str, Any]],
    index: KeyIndex | None = None,
    tag_names: Mapping[str, str] | None = None,
) -> list[RuleDiff]:
    """Rule-by-rule diff (every rule, unchanged ones included). Rules in the same relative order
    are unchanged even if their position shifted; a rule replaced in place is 'changed'; an
    identical rule elsewhere in the order has 'moved'; the rest are added/removed."""
    names = tag_names or {}
    b_rules = [_rule_obj(r) for r in before]
    a_rules = [_rule_obj(r) for r in after]
    b_keys = [canonical_rule(r) for r in b_rules]
    a_keys = [canonical_rule(r) for r in a_rules]
    display = index.display_name if index is not None else _no_display_name

    def label(cc: str, key: str, leaf: dict[str, Any]) -> str:
        if cc == VIRTUAL_TAGS and key in names:
            return names[key]
        return str(display(cc, key) or leaf.get("displayName") or key)

    def text(r: VirtualTagRule) -> str:
        flt = render(r.filters, display) if r.filters else "(no filter)"
        return f"{flt} → {_to_text(r.to, names)}"

    # Longest common subsequence first: a rule that only shifted because another was added or
    # removed above it is unchanged. Then a removed rule identical to an added one has moved.
    pairs: list[tuple[ChangeKind, int | None, int | None]] = []
    removed: list[int] = []
    added: list[int] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, b_keys, a_keys, autojunk=False).get_opcodes():
        if op == "equal":
            pairs.extend(("unchanged", i1 + k, j1 + k) for k in range(i2 - i1))
            continue
        common = min(i2 - i1, j2 - j1) if op == "replace" else 0
        pairs.extend(("changed", i1 + k, j1 + k) for k in range(common))
        removed.extend(range(i1 + common, i2))
        added.extend(range(j1 + common, j2))
    for j in list(added):
        i = next((i for i in removed if b_keys[i] == a_keys[j]), None)
        if i is not None:
            removed.remove(i)
            added.remove(j)
            pairs.append(("moved", i, j))
    pairs.extend(("added", None, j) for j in added)

    def make(change: ChangeKind, i: int | None, j: int | None) -> RuleDiff:
        b = b_rules[i] if i is not None else None
        a = a_rules[j] if j is not None else None
        changes: list[str] = []
        if change == "changed" and b is not None and a is not None:
            changes = value_changes(b.filters, a.filters, label)
            if _to_text(b.to, names) != _to_text(a.to, names):
                changes.append(f"to: {_to_text(b.to, names)} → {_to_text(a.to, names)}")
            if b.timeframe != a.timeframe:
                changes.append("timeframe changed")
        return RuleDiff(
            index=rule_number(j if j is not None else (i if i is not None else 0)),
            change=change,
            before_index=rule_number(i) if i is not None else None,
            after_index=rule_number(j) if j is not None else None,
            before_to=_to_text(b.to, names) if b else None,
            after_to=_to_text(a.to, names) if a else None,
            before=text(b) if b and change != "unchanged" else None,
            after=text(a) if a and change not in ("unchanged", "moved") else None,
            value_changes=changes,
            before_filters=strip_display_names(b.filters) if b else None,
            after_filters=strip_display_names(a.filters) if a else None,
        )

    out = [make(kind, i, j) for kind, i, j in sorted(pairs, key=lambda p: p[2] if p[2] is not None else -1)]
    out.extend(make("removed", i, None) for i in sorted(removed))
    return out


def diff_tag(
    before: VirtualTag,
    after_body: VirtualTagWrite | VirtualTag,
    index: KeyIndex | None = None,
    *,
    tag_names: Mapping[str, str] | None = None,
    outputs_before: Sequence[str] = (),
    outputs_after: Sequence[str] = (),
    include_filters: bool = False,
) -> TagDiff:
    """What a PUT of ``after_body`` changes in ``before``: name, default value, rules, values."""
    every = diff_rules(before.rules, after_body.rules, index, tag_names)
    counts = {k: 0 for k in ("added", "removed", "changed", "moved", "unchanged")}
    for r in every:
        counts[r.change] += 1
    shown = [r for r in every if r.change != "unchanged"]
    name_changed = before.name != after_body.name
    default_changed = (before.default_value or None) != (after_body.default_value or None)
    before_default = target_text(before.default_value, tag_names)
    after_default = target_text(after_body.default_value, tag_names)
    parts: list[str] = []
    if name_changed:
        parts.append(f"name {fence(before.name)} → {fence(after_body.name)}")
    if default_changed:
        parts.append(f"default value {fence(before_default or '')} → {fence(after_default or '')}")
    rule_bits = [f"{n} {k}" for k, n in counts.items() if n and k != "unchanged"]
    parts.append(("rules: " + ", ".join(rule_bits)) if rule_bits else "rules unchanged")
    if counts["unchanged"] and rule_bits:
        parts[-1] += f" ({counts['unchanged']} unchanged)"
    added = [v for v in outputs_after if v not in set(outputs_before)]
    removed = [v for v in outputs_before if v not in set(outputs_after)]
    if removed:
        parts.append("values no longer produced: " + ", ".join(fence(v) for v in removed))
    if added:
        parts.append("new values: " + ", ".join(fence(v) for v in added))
    diff = TagDiff(
        name_changed=name_changed,
        before_name=before.name,
        after_name=after_body.name,
        default_changed=default_changed,
        before_default=before_default,
        after_default=after_default,
        rules=shown,
        unchanged_rules=[r.index for r in every if r.change == "unchanged"],
        counts=counts,
        values_added=added,
        values_removed=removed,
        summary="; ".join(parts) + ".",
    )
    return diff if include_filters else diff.without_filters()


# ----------------------------------------------------------------------------- metadata


class MetadataDiff(BaseModel):
    added: list[str] = Field(default_factory=list, description="Values that get metadata.")
    removed: list[str] = Field(default_factory=list, description="Values whose metadata is removed.")
    changed: dict[str, list[str]] = Field(
        default_factory=dict, description="Per value: 'groups: +g2', 'customMetadata.owner: a → b', ..."
    )
    unchanged: int = 0
    removes_or_overwrites: bool = Field(
        default=False, description="true: a value, list entry or custom field is removed or overwritten."
    )
    summary: str


def _list_changes(field: str, before: list[str], after: list[str]) -> tuple[list[str], bool]:
    """``groups: +g2, -g1`` and whether anything was removed."""
    gone = [x for x in before if x not in after]
    parts = [f"+{show(x)}" for x in after if x not in before] + [f"-{show(x)}" for x in gone]
    return ([f"{field}: {', '.join(parts)}"] if parts else []), bool(gone)


def _short(v: Any) -> str:
    return show(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str))


def diff_metadata(before: Mapping[str, ValueMetadata], after: Mapping[str, ValueMetadata]) -> MetadataDiff:
    out = MetadataDiff(summary="")
    for value in sorted(set(before) | set(after)):
        if value not in before:
            out.added.append(value)
            continue
        if value not in after:
            out.removed.append(value)
            out.removes_or_overwrites = True
            continue
        b, a = before[value], after[value]
        groups, lost_group = _list_changes("groups", b.groups, a.groups)
        endpoints, lost_endpoint = _list_changes("endpoints", b.endpoint_ids, a.endpoint_ids)
        lines = groups + endpoints
        out.removes_or_overwrites |= lost_group or lost_endpoint
        for k in [*b.custom_metadata, *(k for k in a.custom_metadata if k not in b.custom_metadata)]:
            field = f"customMetadata.{show(k)}"
            if k not in a.custom_metadata:
                lines.append(f"{field}: removed (was {_short(b.custom_metadata[k])})")
                out.removes_or_overwrites = True
            elif k not in b.custom_metadata:
                lines.append(f"{field}: set to {_short(a.custom_metadata[k])}")
            elif b.custom_metadata[k] != a.custom_metadata[k]:
                lines.append(f"{field}: {_short(b.custom_metadata[k])} → {_short(a.custom_metadata[k])}")
                out.removes_or_overwrites = True
        if lines:
            out.changed[value] = lines
        else:
            out.unchanged += 1
    bits = []
    if out.added:
        bits.append("adds " + ", ".join(fence(v) for v in out.added))
    if out.removed:
        bits.append("removes " + ", ".join(fence(v) for v in out.removed))
    if out.changed:
        bits.append("changes " + ", ".join(fence(v) for v in out.changed))
    out.summary = (
        ("; ".join(bits) or "no change") + (f" ({out.unchanged} unchanged)" if out.unchanged else "") + "."
    )
    return out


# ----------------------------------------------------------------------------- recorded changes


def _image(state: Mapping[str, Any] | None, part: Literal["tag", "metadata"]) -> Any:
    """The tag or metadata part of a change log image (a tag, ``{"tag", "metadata"}`` or ``{"metadata"}``)."""
    if not state:
        return None
    if part == "tag":
        return state.get("tag") if "tag" in state else (state if "rules" in state else None)
    return state.get("metadata")


def _rules(tag: Mapping[str, Any]) -> str:
    n = len(tag.get("rules") or [])
    return f"{n} rule" if n == 1 else f"{n} rules"


def describe_change(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    index: KeyIndex | None = None,
    tag_names: Mapping[str, str] | None = None,
) -> str:
    """What a recorded write changed, at value level, from its before and after images:
    'rules: 1 changed (2 unchanged). rule 1: Account Name: +staging'."""
    parts: list[str] = []
    bt, at = _image(before, "tag"), _image(after, "tag")
    if bt is not None and at is not None:
        d = diff_tag(VirtualTag.model_validate(bt), VirtualTag.model_validate(at), index, tag_names=tag_names)
        parts.append(" ".join([d.summary, *d.rule_lines()]))
    elif at is not None:
        parts.append(f"created {fence(str(at.get('name', '')))} with {_rules(at)}")
    elif bt is not None:
        parts.append(f"deleted {fence(str(bt.get('name', '')))} ({_rules(bt)})")
    bm, am = _image(before, "metadata"), _image(after, "metadata")
    if am is not None:
        old = {k: ValueMetadata.model_validate(v) for k, v in (bm or {}).items()}
        new = {k: ValueMetadata.model_validate(v) for k, v in am.items()}
        md = diff_metadata(old, new)
        parts.append(f"metadata: {md.summary}" + "".join(f"; {v}: {', '.join(c)}" for v, c in md.changed.items()))
    return " ".join(parts)
