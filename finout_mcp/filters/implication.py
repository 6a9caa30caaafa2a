"""Implication between canonical filters: does every cost line matching ``a`` match ``b``?

Sound, not complete: False means "not proven", never "proven not". Only facts that hold
whatever the case sensitivity of Finout's comparisons are used, and nothing is assumed about
how negative operators treat a missing key except that ``isNot x`` behaves as ``notOneOf [x]``.
The linter uses it to find rules that can never match (shadowed by an earlier rule).
"""

from __future__ import annotations

from typing import Any

from finout_mcp.filters.vocabulary import NEGATIVE_EQUALITY_OPS, POSITIVE_EQUALITY_OPS

DEFAULT_BUDGET = 100_000
"""Sub-checks one :func:`implies` call may spend before it answers "not proven"."""


def _strings(v: Any) -> list[str] | None:
    """A condition's value as a list of strings; None when it is not strings."""
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return list(v)
    return [v] if isinstance(v, str) else None


def leaf_implies(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Does every row matching condition ``a`` match condition ``b``? Sound, not complete."""
    if a.get("costCenter") != b.get("costCenter") or a.get("key") != b.get("key"):
        return False
    oa, ob = a.get("operator"), b.get("operator")
    va, vb = a.get("value"), b.get("value")
    la, lb = _strings(va), _strings(vb)
    if oa == ob and va == vb:
        return True
    if oa in POSITIVE_EQUALITY_OPS:
        if la is None:
            return False
        if ob in POSITIVE_EQUALITY_OPS:
            return lb is not None and set(la) <= set(lb)
        if ob in NEGATIVE_EQUALITY_OPS:
            return lb is not None and not {x.lower() for x in la} & {x.lower() for x in lb}
        if ob == "exists":
            return True
        if ob == "contains":
            return lb is not None and all(lb[0] in x for x in la)
        if ob == "notContains":
            return lb is not None and all(lb[0].lower() not in x.lower() for x in la)
        return False
    if oa in NEGATIVE_EQUALITY_OPS and ob in NEGATIVE_EQUALITY_OPS:
        return la is not None and lb is not None and set(lb) <= set(la)
    if oa == "contains":
        if la is None:
            return False
        if ob == "exists":
            return True
        if ob == "contains":
            return lb is not None and lb[0] in la[0]
        if ob in NEGATIVE_EQUALITY_OPS:
            return lb is not None and all(la[0].lower() not in x.lower() for x in lb)
        return False
    if oa == "notContains" and ob == "notContains":
        return la is not None and lb is not None and la[0] in lb[0]
    return oa == "exists" and ob == "exists"


class Implier:
    """Implication checks sharing one budget and one memo (the linter's pairs of rules)."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self.memo: dict[tuple[int, int], bool] = {}

    def implies(self, a: dict[str, Any], b: dict[str, Any]) -> bool:
        key = (id(a), id(b))
        if key in self.memo:
            return self.memo[key]
        self.budget -= 1
        if self.budget < 0:
            return False
        result = self._implies(a, b)
        self.memo[key] = result
        return result

    def _implies(self, a: dict[str, Any], b: dict[str, Any]) -> bool:
        if a == b:
            return True
        if "OR" in a:  # every branch of a must imply b
            return all(self.implies(c, b) for c in a["OR"])
        if "AND" in b:  # a must imply every part of b
            return all(self.implies(a, c) for c in b["AND"])
        if "AND" in a and any(self.implies(c, b) for c in a["AND"]):
            return True
        if "OR" in b and any(self.implies(a, c) for c in b["OR"]):
            return True
        if "AND" in a or "OR" in b:
            return False
        return leaf_implies(a, b)


def implies(a: dict[str, Any], b: dict[str, Any], budget: int = DEFAULT_BUDGET) -> bool:
    """Sound check that canonical filter ``a`` implies ``b`` (every row matching a matches b).

    False means "not proven", never "proven not". Bounded by ``budget`` sub-checks.
    """
    return Implier(budget).implies(a, b)
