"""Canonical forms: the one home of "the same filter".

- A parsed tree: :func:`canonical` pushes NOT down and :func:`flatten` merges AND-in-AND and
  OR-in-OR, drops duplicate children (compared by :func:`signature`, children as sets) and
  replaces one-child groups by their child. This is the filter the composer returns.
- A filter in Finout's form, for comparison (idempotent creates, drift, diffs):
  :func:`canonical_filter` / :func:`canonical_json` ignore ``displayName``, the order of AND/OR
  children and of ``oneOf``/``notOneOf`` values.
- A filter as written back: :func:`strip_display_names` (GET responses add ``displayName`` to
  conditions; POST/PUT must never send it back).
"""

from __future__ import annotations

import json
from typing import Any

from finout_mcp.filters.tree import Cond, Group, Node, Not, push_not
from finout_mcp.filters.vocabulary import LIST_OPS

DISPLAY_NAME = "displayName"


# ----------------------------------------------------------------------------- the tree


def signature(node: Cond | Group) -> Any:
    """A hashable identity of a canonical node; AND/OR children compared as sets."""
    if isinstance(node, Cond):
        return ("c", node.cost_center, node.key, node.op, node.values)
    return (node.op, frozenset(signature(c) for c in node.children if not isinstance(c, Not)))


def flatten(node: Cond | Group) -> Cond | Group:
    """Merge same-op nesting, drop duplicates, replace one-child groups by the child."""
    if isinstance(node, Cond):
        return node
    kids: list[Cond | Group] = []
    seen: set[Any] = set()
    for child in node.children:
        assert not isinstance(child, Not)
        flat = flatten(child)
        parts = flat.children if isinstance(flat, Group) and flat.op == node.op else (flat,)
        for part in parts:
            assert not isinstance(part, Not)
            sig = signature(part)
            if sig not in seen:
                seen.add(sig)
                kids.append(part)
    if len(kids) == 1:
        return kids[0]
    return Group(node.op, tuple(kids))


def canonical(node: Node) -> Cond | Group:
    """The canonical tree: NOT pushed to the leaves, then flattened."""
    return flatten(push_not(node))


# ----------------------------------------------------------------------------- Finout's form


def stable_json(value: Any) -> str:
    """JSON text with sorted keys and no spaces: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_filter(flt: Any) -> Any:
    """A filter in a canonical form: no displayName, AND/OR children sorted, oneOf values a sorted set."""
    if isinstance(flt, list):
        return sorted((canonical_filter(x) for x in flt), key=stable_json)
    if not isinstance(flt, dict):
        return flt
    out: dict[str, Any] = {}
    for k, v in flt.items():
        if k == DISPLAY_NAME:
            continue
        if k in ("AND", "OR") and isinstance(v, list):
            out[k] = sorted((canonical_filter(x) for x in v), key=stable_json)
        elif k == "value" and flt.get("operator") in LIST_OPS and isinstance(v, list):
            out[k] = sorted({stable_json(x) if not isinstance(x, str) else x for x in v})
        else:
            out[k] = canonical_filter(v) if isinstance(v, dict) else v
    return out


def canonical_json(flt: Any) -> str:
    """Canonical JSON text of a filter: equal for filters that differ only in irrelevant order."""
    return stable_json(canonical_filter(flt))


def strip_display_names(value: Any) -> Any:
    """A copy of a filter (or any JSON) without ``displayName`` at any depth: GET responses add
    it to conditions, and POST/PUT must never send it back."""
    if isinstance(value, dict):
        return {k: strip_display_names(v) for k, v in value.items() if k != DISPLAY_NAME}
    if isinstance(value, list):
        return [strip_display_names(v) for v in value]
    return value


def rule_for_write(rule: dict[str, Any]) -> dict[str, Any]:
    """A virtual-tag rule as sent: its filters and its ``to`` object without ``displayName``."""
    out = dict(rule)
    if "filters" in out:
        out["filters"] = strip_display_names(out["filters"])
    if isinstance(out.get("to"), dict):
        out["to"] = {k: v for k, v in out["to"].items() if k != DISPLAY_NAME}
    return out
