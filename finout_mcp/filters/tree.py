"""The filter tree: conditions, AND/OR groups and NOT; NOT pushed to the leaves; the wire form.

A parsed filter is a :data:`Node`. :func:`push_not` removes every :class:`Not` (De Morgan,
exact under the semantics in :mod:`.vocabulary`); :func:`to_finout` writes a tree without
:class:`Not` in Finout's form. :func:`wire_leaves` and :func:`leaf_values` read the conditions
of a filter already in Finout's form (as stored or read back).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from finout_mcp.api.models import FinoutFilter
from finout_mcp.filters.vocabulary import LIST_OPS, NEGATION, SINGLE_OPS


@dataclass(frozen=True)
class Cond:
    cost_center: str
    key: str
    op: str
    values: tuple[str, ...] = ()
    path: str = field(default="", compare=False, hash=False)

    def negated(self) -> Cond:
        return Cond(self.cost_center, self.key, NEGATION[self.op], self.values, self.path)


@dataclass(frozen=True)
class Group:
    op: Literal["AND", "OR"]
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Cond | Group | Not


def push_not(node: Node, negate: bool = False) -> Cond | Group:
    """Push every ``not`` to the leaves (De Morgan); the result has no :class:`Not`."""
    if isinstance(node, Cond):
        return node.negated() if negate else node
    if isinstance(node, Not):
        return push_not(node.child, not negate)
    op: Literal["AND", "OR"] = node.op
    if negate:
        op = "OR" if node.op == "AND" else "AND"
    return Group(op, tuple(push_not(c, negate) for c in node.children))


def tree_depth(node: Cond | Group) -> int:
    if isinstance(node, Cond):
        return 0
    return 1 + max((tree_depth(c) for c in node.children if not isinstance(c, Not)), default=0)


def leaves(node: Node) -> list[Cond]:
    out: list[Cond] = []
    stack: list[Node] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Cond):
            out.append(n)
        elif isinstance(n, Not):
            stack.append(n.child)
        else:
            stack.extend(reversed(n.children))
    return out


def to_finout(node: Cond | Group) -> FinoutFilter:
    """The wire form: ``{"costCenter","key","operator","value"?}`` or ``{"AND"|"OR": [...]}``."""
    if isinstance(node, Group):
        return {node.op: [to_finout(c) for c in node.children if not isinstance(c, Not)]}
    out: dict[str, Any] = {"costCenter": node.cost_center, "key": node.key, "operator": node.op}
    if node.op in LIST_OPS:
        out["value"] = list(node.values)
    elif node.op in SINGLE_OPS:
        out["value"] = node.values[0]
    return out


def wire_leaves(flt: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """The conditions of a filter in Finout's form, in order, with their paths (``AND[0].OR[1]``)."""
    if isinstance(flt, dict):
        for group in ("AND", "OR"):
            if isinstance(flt.get(group), list):
                for i, child in enumerate(flt[group]):
                    yield from wire_leaves(child, f"{path}.{group}[{i}]" if path else f"{group}[{i}]")
                return
        if "key" in flt:
            yield path, flt


def leaf_values(leaf: dict[str, Any]) -> tuple[str, ...]:
    """A wire condition's values as text: the list, the one value, or none."""
    v = leaf.get("value")
    if isinstance(v, list):
        return tuple(str(x) for x in v)
    return (str(v),) if v is not None else ()
