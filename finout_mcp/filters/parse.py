"""An intent or a raw Finout filter → the canonical tree and findings.

1. *Guard* — the raw input is walked iteratively (no recursion) and rejected when it nests
   deeper than :data:`~.limits.MAX_INPUT_NESTING` or holds more than
   :data:`~.limits.MAX_INPUT_NODES` objects.
2. *Parse* — every node is validated: keys resolved by the :class:`KeyResolver` passed in,
   operators and their aliases normalised, values shaped to what the operator needs.
   Problems become :class:`~.findings.Finding` s, never exceptions.
3. *Normalise* — :func:`~.canonical.canonical`, then the limits of the canonical filter.

Pure CPU work: no I/O, nothing cached. The composer runs it in a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from finout_mcp.api.models import MegabillKey
from finout_mcp.filters.canonical import canonical
from finout_mcp.filters.findings import Finding
from finout_mcp.filters.limits import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_INPUT_NESTING,
    MAX_INPUT_NODES,
    MAX_VALUES,
)
from finout_mcp.filters.tree import Cond, Group, Node, Not, leaves, tree_depth
from finout_mcp.filters.vocabulary import (
    CONTAINS_OPS,
    GROUP_WORDS,
    LIST_OPS,
    NO_VALUE_OPS,
    NOT_WORD,
    OPERATOR_ALIASES,
    OPERATORS,
    SINGLE_OPS,
    normalize_field,
    normalize_operator,
)


@dataclass
class Resolution:
    """A key resolved (``entry``), or why not (``code``, ``message``, ``candidates``)."""

    entry: MegabillKey | None = None
    code: str = ""
    message: str = ""
    candidates: list[str] = field(default_factory=list)
    matches: list[MegabillKey] = field(default_factory=list)  # an ambiguous key's candidates


class KeyResolver(Protocol):
    """Resolves a condition's key (and optional cost center) against the account's keys."""

    def resolve(self, cost_center: str | None, key: str) -> Resolution: ...


@dataclass(frozen=True)
class Ambiguous:
    """A condition with values whose key is ambiguous: its error, the candidate keys, the values asked for."""

    finding: Finding
    keys: list[MegabillKey]
    values: tuple[str, ...]


@dataclass
class Parsed:
    """What parsing found: the canonical tree (None when the input has no usable tree), its
    size, the findings (errors make the filter unusable), and the ambiguous keys asked with values."""

    findings: list[Finding] = field(default_factory=list)
    canonical: Cond | Group | None = None
    conditions: int = 0
    depth: int = 0
    ambiguous: list[Ambiguous] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.canonical is not None and not any(f.severity == "error" for f in self.findings)


def fmt(v: Any) -> str:
    """A value quoted in a finding (JSON, cut to 80 characters)."""
    try:
        return json.dumps(v)[:80]
    except (TypeError, ValueError):
        return type(v).__name__


def guard_input(spec: Any) -> Finding | None:
    """Reject absurd input before any recursion: iterative walk, early exit."""
    stack: list[tuple[Any, int]] = [(spec, 1)]
    count = 0
    while stack:
        obj, depth = stack.pop()
        count += 1
        if count > MAX_INPUT_NODES:
            return Finding(
                severity="error",
                code="too_large",
                message=(
                    f"The filter is too large (more than {MAX_INPUT_NODES} objects); a filter may hold "
                    f"at most {MAX_CONDITIONS} conditions. Use oneOf value lists instead."
                ),
            )
        if depth > MAX_INPUT_NESTING:
            return Finding(
                severity="error",
                code="too_deep",
                message=(
                    f"The filter nests deeper than {MAX_INPUT_NESTING} levels; a canonical filter may be "
                    f"at most {MAX_DEPTH} groups deep. Flatten it: all/any take lists of any length."
                ),
            )
        if isinstance(obj, dict):
            stack.extend((v, depth + 1) for v in obj.values() if isinstance(v, dict | list | tuple))
        elif isinstance(obj, list | tuple):
            stack.extend(
                (v, depth + 1 if isinstance(v, list | tuple) else depth)
                for v in obj
                if isinstance(v, dict | list | tuple)
            )
    return None


def parse(spec: dict[str, Any], resolver: KeyResolver) -> Parsed:
    """An intent or raw filter (an object) → its canonical tree and the findings."""
    too_big = guard_input(spec)
    if too_big is not None:
        return Parsed(findings=[too_big])
    parser = _Parser(resolver)
    if not spec:
        parser.error("bad_node", 'The filter is empty; give a condition or {"all": [...]}/{"any": [...]}.', "")
        return Parsed(findings=parser.findings)
    tree = parser.parse(spec, "")
    out = Parsed(findings=parser.findings, ambiguous=parser.ambiguous)
    if tree is not None:
        out.canonical = canonical(tree)
        out.conditions = len(leaves(out.canonical))
        out.depth = tree_depth(out.canonical)
        if out.conditions > MAX_CONDITIONS:
            parser.error(
                "too_many_conditions",
                f"The filter has {out.conditions} conditions; at most {MAX_CONDITIONS} are allowed (our limit). "
                "Merge conditions on the same key into one oneOf with a list of values.",
                "",
            )
        if out.depth > MAX_DEPTH:
            parser.error(
                "filter_too_deep",
                f"The canonical filter nests {out.depth} groups deep; "
                f"at most {MAX_DEPTH} are allowed (our limit). "
                "Simplify it: move conditions up, use oneOf lists instead of any:[...] of = conditions.",
                "",
            )
    return out


class _Parser:
    def __init__(self, resolver: KeyResolver) -> None:
        self.resolver = resolver
        self.findings: list[Finding] = []
        self.ambiguous: list[Ambiguous] = []

    def error(self, code: str, message: str, path: str, candidates: Sequence[str] = ()) -> None:
        self.findings.append(
            Finding(severity="error", code=code, message=message, path=path, candidates=list(candidates))
        )

    def warn(self, code: str, message: str, path: str, candidates: Sequence[str] = ()) -> None:
        self.findings.append(
            Finding(severity="warning", code=code, message=message, path=path, candidates=list(candidates))
        )

    def parse(self, node: Any, path: str) -> Node | None:
        if not isinstance(node, dict):
            self.error(
                "bad_node",
                f"Expected an object (a condition, or all/any/not), got {fmt(node)}. A condition is "
                '{"key": ..., "op": ..., "values": [...]}; a group is {"all": [...]} or {"any": [...]}.',
                path,
            )
            return None
        names = {str(k): k for k in node}
        structural = [k for k in names if k.lower() in GROUP_WORDS or k.lower() == NOT_WORD]
        if len(structural) > 1 or (structural and len(names) > 1):
            self.error(
                "mixed_node",
                f"A node must be exactly one of all, any, not or a condition; this one has {sorted(names)}. "
                "Split it: wrap the parts in all:[...] or any:[...].",
                path,
            )
            return None
        prefix = f"{path}." if path else ""
        if structural:
            word = structural[0]
            body = node[names[word]]
            sub = f"{prefix}{word}"
            if word.lower() == NOT_WORD:
                if not isinstance(body, dict):
                    self.error(
                        "bad_not",
                        f"not takes one node (an object), got {fmt(body)}. To negate several, use "
                        '{"not": {"all": [...]}} or {"not": {"any": [...]}}.',
                        sub,
                    )
                    return None
                child = self.parse(body, sub)
                return Not(child) if child is not None else None
            op = GROUP_WORDS[word.lower()]
            if not isinstance(body, list | tuple):
                self.error("bad_group", f"{word} takes a list of nodes, got {fmt(body)}.", sub)
                return None
            if not body:
                self.error(
                    "empty_group",
                    f"{word} is empty; give it at least one condition, or remove it.",
                    sub,
                )
                return None
            kids = [self.parse(c, f"{sub}[{i}]") for i, c in enumerate(body)]
            if any(k is None for k in kids):
                return None
            return Group(op, tuple(k for k in kids if k is not None))
        return self.condition(node, path)

    def condition(self, node: dict[Any, Any], path: str) -> Cond | None:
        fields: dict[str, Any] = {}
        for raw_name, val in node.items():
            norm = normalize_field(raw_name)
            if norm is None:
                self.warn(
                    "unknown_field",
                    f"Ignored unknown field {str(raw_name)!r}; a condition has key, cost_center, op, values.",
                    path,
                )
                continue
            if norm in fields and norm == "value" and fields[norm] != val:
                self.error(
                    "conflicting_values",
                    "Both value and values are given with different contents; give only one.",
                    path,
                )
                return None
            fields[norm] = val
        fields.pop("display_name", None)  # GET responses carry it; never sent back
        ok = True
        key = fields.get("key")
        if not isinstance(key, str) or not key.strip():
            self.error(
                "missing_key",
                f"A condition needs a key (the Finout key or its display name), got {fmt(key)}."
                if "key" in fields
                else 'A condition needs "key" (the Finout key or its display name), e.g. '
                '{"key": "Account Name", "op": "in", "values": ["prod"]}.',
                path,
            )
            ok = False
        cc = fields.get("cost_center")
        if cc is not None and (not isinstance(cc, str) or not cc.strip()):
            self.error("bad_cost_center", f"cost_center must be a non-blank string, got {fmt(cc)}.", path)
            ok = False
            cc = None
        op_raw = fields.get("op")
        op: str | None = None
        valid = ", ".join(OPERATORS) + "; aliases: " + ", ".join(OPERATOR_ALIASES)
        if op_raw is None:
            self.error("missing_operator", f'A condition needs "op", one of: {valid}.', path)
            ok = False
        elif not isinstance(op_raw, str) or (op := normalize_operator(op_raw)) is None:
            self.error(
                "unknown_operator",
                f"Unknown operator {fmt(op_raw)}. Valid operators: {valid}.",
                path,
                list(OPERATORS),
            )
            ok = False
        entry: MegabillKey | None = None
        res: Resolution | None = None
        if isinstance(key, str) and key.strip():
            res = self.resolver.resolve(cc if isinstance(cc, str) else None, key)
            if res.entry is None:
                self.error(res.code, res.message, path, res.candidates)
                ok = False
            entry = res.entry
        shaped = self.shape(op, fields, path) if op is not None else None
        if entry is None and res is not None and res.matches and shaped is not None and shaped[1]:
            self.ambiguous.append(Ambiguous(self.findings[-1], res.matches, shaped[1]))
        if not ok or entry is None or shaped is None:
            return None
        return Cond(entry.cost_center, entry.key, shaped[0], shaped[1], path)

    def shape(self, op: str, fields: dict[str, Any], path: str) -> tuple[str, tuple[str, ...]] | None:
        has = "value" in fields
        raw = fields.get("value")
        if op in NO_VALUE_OPS:
            if has and raw is not None and raw != "" and raw != []:
                self.error(
                    "unexpected_value",
                    f"{op} takes no value, got {fmt(raw)}. Drop the value, or use is/oneOf to match values.",
                    path,
                )
                return None
            return op, ()
        if raw is None:
            need = '"values": ["..."]' if op in LIST_OPS else '"value": "..."'
            self.error("missing_value", f"{op} needs a value: give {need}.", path)
            return None
        items = list(raw) if isinstance(raw, list | tuple) else [raw]
        if not items:
            self.error(
                "empty_values",
                f"{op} got an empty list; give at least one value, or drop the condition.",
                path,
            )
            return None
        out: list[str] = []
        for item in items:
            if isinstance(item, bool):
                out.append("true" if item else "false")
            elif isinstance(item, int | float):
                out.append(str(item))
            elif isinstance(item, str):
                if not item.strip():
                    self.error(
                        "blank_value",
                        f"{op} got a blank value {item!r}; to match a missing key use notExists, "
                        "otherwise give a real value.",
                        path,
                    )
                    return None
                out.append(item)
            else:
                self.error(
                    "bad_value",
                    f"Values must be strings (numbers are accepted), got {fmt(item)}.",
                    path,
                )
                return None
        distinct = sorted(set(out))
        if op in SINGLE_OPS and len(distinct) == 1:
            return op, (distinct[0],)
        if op in CONTAINS_OPS:
            group = "any" if op == "contains" else "all"
            self.error(
                "contains_needs_one_value",
                f"{op} takes one string, got {len(distinct)}; "
                f"use {group}:[...] of {op} conditions, one per string.",
                path,
            )
            return None
        if op == "is":
            op = "oneOf"
        elif op == "isNot":
            op = "notOneOf"
        if len(distinct) > MAX_VALUES:
            self.error(
                "too_many_values",
                f"{op} has {len(distinct)} values; at most {MAX_VALUES} are allowed per condition "
                "(our limit). Split it into several conditions under any:[...] (or all:[...] for notOneOf).",
                path,
            )
            return None
        return op, tuple(distinct)
