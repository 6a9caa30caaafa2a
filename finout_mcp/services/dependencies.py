"""The dependency graph between virtual tags.

A tag depends on another when one of its rules filters on the other's values (a condition
whose key is the other tag's id under cost center ``Virtual Tags``) or takes the other's
value (a ``to`` object ``{"key": <tag id>, "costCenter": "Virtual Tags"}``, or the same
object as its ``defaultValue``). Writes use
the graph to say which tags a change affects and which of their conditions would match
nothing afterwards; delete refuses while a tag is referenced; undo of a delete repoints
references to the recreated tag's new id.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from finout_mcp.api.models import VIRTUAL_TAGS, TagReference, VirtualTag, VirtualTagRule, VirtualTagWrite
from finout_mcp.filters.tree import leaf_values, wire_leaves
from finout_mcp.filters.vocabulary import POSITIVE_EQUALITY_OPS
from finout_mcp.services.fencing import fence


def tag_outputs(tag: VirtualTag, tags: Mapping[str, VirtualTag]) -> list[str]:
    """Every value a virtual tag can take: its rules' ``to`` strings, referenced tags' outputs,
    and its default value."""
    out: dict[str, None] = {}
    seen: set[str] = set()
    stack = [tag]
    while stack:
        t = stack.pop()
        if t.id in seen:
            continue
        seen.add(t.id)
        for rule in t.rules:
            if isinstance(rule.to, TagReference):
                ref = tags.get(rule.to.key)
                if ref is not None:
                    stack.append(ref)
            elif rule.to:
                out[rule.to] = None
        if isinstance(t.default_value, TagReference):  # "else, the value of that other tag"
            ref = tags.get(t.default_value.key)
            if ref is not None:
                stack.append(ref)
        elif t.default_value:
            out[t.default_value] = None
    return list(out)


@dataclass(frozen=True)
class Reference:
    """Rule ``rule`` (1-based) of tag ``from_id`` refers to tag ``to_id``."""

    from_id: str
    from_name: str
    to_id: str
    rule: int  # 1-based; 0 for the default value
    kind: Literal["filter", "to", "default"]
    operator: str | None = None
    values: tuple[str, ...] = ()
    path: str = ""

    def describe(self) -> str:
        if self.kind == "default":
            return f"{fence(self.from_name)} takes its default value from it"
        if self.kind == "to":
            return f"{fence(self.from_name)} rule {self.rule} takes its value from it"
        vals = ", ".join(self.values)
        return f"{fence(self.from_name)} rule {self.rule} filters on it ({self.operator} [{vals}])"


class BrokenCondition(BaseModel):
    tag_id: str
    tag_name: str
    rule: int = Field(description="1-based rule of the dependent tag.")
    condition: str = Field(description="The condition, readable.")
    missing: list[str] = Field(description="Values the condition names that the tag would no longer produce.")
    matches_nothing: bool = Field(description="true: no value of the condition would be produced at all.")


class Dependents(BaseModel):
    """Tags that use this tag, and what a change would break in them."""

    tags: list[str] = Field(default_factory=list, description="Dependent tags, 'name (id)'.")
    references: list[str] = Field(default_factory=list, description="Each reference, readable.")
    broken: list[BrokenCondition] = Field(
        default_factory=list, description="Conditions on values the change removes (or renames)."
    )


class TagGraph:
    """Every reference between the given tags."""

    def __init__(self, tags: Sequence[VirtualTag]) -> None:
        self.tags: dict[str, VirtualTag] = {t.id: t for t in tags}
        self._refs: dict[str, list[Reference]] = {}
        for t in tags:
            if isinstance(t.default_value, TagReference) and t.default_value.cost_center == VIRTUAL_TAGS:
                self._refs.setdefault(t.default_value.key, []).append(
                    Reference(t.id, t.name, t.default_value.key, 0, "default")
                )
            for i, rule in enumerate(t.rules, start=1):
                for ref in _rule_references(t, i, rule):
                    self._refs.setdefault(ref.to_id, []).append(ref)

    def references_to(self, tag_id: str) -> list[Reference]:
        """References from *other* tags to ``tag_id``."""
        return [r for r in self._refs.get(tag_id, []) if r.from_id != tag_id]

    def outputs(self, tag: VirtualTag) -> set[str]:
        return set(tag_outputs(tag, {**self.tags, tag.id: tag}))

    def dependents(self, tag_id: str, new_outputs: set[str] | None = None) -> Dependents:
        """The tags that refer to ``tag_id``; with ``new_outputs`` (the values the tag would produce
        after a change), the filter conditions that would lose values it produces today (values a
        condition names that the tag never produced are the linter's finding, not this change's)."""
        refs = self.references_to(tag_id)
        seen: dict[str, None] = {}
        for r in refs:
            seen.setdefault(f"{r.from_name} ({r.from_id})")
        out = Dependents(tags=list(seen), references=[r.describe() for r in refs])
        if new_outputs is None:
            return out
        current = self.tags.get(tag_id)
        old_outputs = self.outputs(current) if current is not None else set()
        for r in refs:
            if r.kind != "filter" or r.operator not in POSITIVE_EQUALITY_OPS:
                continue
            missing = [v for v in r.values if v in old_outputs and v not in new_outputs]
            if missing:
                out.broken.append(
                    BrokenCondition(
                        tag_id=r.from_id,
                        tag_name=r.from_name,
                        rule=r.rule,
                        condition=f"{r.operator} [{', '.join(r.values)}]",
                        missing=missing,
                        matches_nothing=not any(v in new_outputs for v in r.values),
                    )
                )
        return out


def _rule_references(tag: VirtualTag, index: int, rule: VirtualTagRule) -> Iterator[Reference]:
    if isinstance(rule.to, TagReference):
        yield Reference(tag.id, tag.name, rule.to.key, index, "to")
    for path, leaf in wire_leaves(rule.filters or {}):
        if leaf.get("costCenter") == VIRTUAL_TAGS and isinstance(leaf.get("key"), str):
            yield Reference(
                tag.id, tag.name, leaf["key"], index, "filter", str(leaf.get("operator")), leaf_values(leaf), path
            )


def _repoint_filter(flt: Any, old_id: str, new_id: str) -> Any:
    if isinstance(flt, list):
        return [_repoint_filter(x, old_id, new_id) for x in flt]
    if not isinstance(flt, dict):
        return flt
    out = {k: _repoint_filter(v, old_id, new_id) for k, v in flt.items()}
    if out.get("costCenter") == VIRTUAL_TAGS and out.get("key") == old_id:
        out["key"] = new_id
    return out


def repointed(tag: VirtualTag, old_id: str, new_id: str) -> VirtualTagWrite | None:
    """The PUT body of ``tag`` with every reference to ``old_id`` pointing at ``new_id``
    (None when it has none)."""
    changed = False
    rules: list[VirtualTagRule] = []
    for rule in tag.rules:
        to = rule.to
        if isinstance(to, TagReference) and to.key == old_id:
            to = to.model_copy(update={"key": new_id})
            changed = True
        filters = rule.filters
        if filters is not None:
            new_filters = _repoint_filter(copy.deepcopy(filters), old_id, new_id)
            changed = changed or new_filters != filters
            filters = new_filters
        rules.append(VirtualTagRule(to=to, filters=filters, timeframe=rule.timeframe))
    default = tag.default_value
    if isinstance(default, TagReference) and default.key == old_id:
        default = default.model_copy(update={"key": new_id})
        changed = True
    if not changed:
        return None
    return tag.write_body(rules=rules, default_value=default)
