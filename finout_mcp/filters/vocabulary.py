"""The words of a filter: Finout's operators, the aliases an intent may use, and how they read.

Semantics (a missing key is ``None``): ``oneOf``/``is``/``contains`` and ``exists`` are false on
a missing key, and their negations are exactly their complements (so ``notOneOf``/``isNot``/
``notContains``/``notExists`` are true on a missing key). This makes pushing NOT down to the
leaves (De Morgan, with :data:`NEGATION`) exact.
"""

from __future__ import annotations

import re
from typing import Literal

OPERATORS: tuple[str, ...] = (
    "oneOf",
    "notOneOf",
    "is",
    "isNot",
    "contains",
    "notContains",
    "exists",
    "notExists",
)
LIST_OPS = frozenset({"oneOf", "notOneOf"})
"""Operators whose ``value`` is a list (compared as a set)."""
SINGLE_OPS = frozenset({"is", "isNot", "contains", "notContains"})
"""Operators whose ``value`` is one string."""
EQUALITY_OPS = frozenset({"oneOf", "notOneOf", "is", "isNot"})
POSITIVE_EQUALITY_OPS = frozenset({"oneOf", "is"})
NEGATIVE_EQUALITY_OPS = frozenset({"notOneOf", "isNot"})
CONTAINS_OPS = frozenset({"contains", "notContains"})
NO_VALUE_OPS = frozenset({"exists", "notExists"})
NEGATION: dict[str, str] = {
    "oneOf": "notOneOf",
    "notOneOf": "oneOf",
    "is": "isNot",
    "isNot": "is",
    "contains": "notContains",
    "notContains": "contains",
    "exists": "notExists",
    "notExists": "exists",
}
READABLE_OPS: dict[str, str] = {
    "oneOf": "in",
    "notOneOf": "not in",
    "is": "=",
    "isNot": "!=",
    "contains": "contains",
    "notContains": "not contains",
    "exists": "exists",
    "notExists": "not exists",
}
"""How each operator reads in a one-line filter or a diff."""

_OP_ALIASES: dict[str, str] = {
    "oneof": "oneOf",
    "in": "oneOf",
    "anyof": "oneOf",
    "notoneof": "notOneOf",
    "notin": "notOneOf",
    "noneof": "notOneOf",
    "is": "is",
    "=": "is",
    "==": "is",
    "equals": "is",
    "equal": "is",
    "eq": "is",
    "isnot": "isNot",
    "!=": "isNot",
    "<>": "isNot",
    "notequals": "isNot",
    "notequal": "isNot",
    "ne": "isNot",
    "neq": "isNot",
    "contains": "contains",
    "notcontains": "notContains",
    "doesnotcontain": "notContains",
    "exists": "exists",
    "exist": "exists",
    "notexists": "notExists",
    "notexist": "notExists",
    "doesnotexist": "notExists",
}
OPERATOR_ALIASES: tuple[str, ...] = ("in", "not in", "=", "==", "equals", "!=", "not contains", "not exists")
"""The aliases named in error messages (more are accepted: any case, snake/space/kebab spelling)."""

GROUP_WORDS: dict[str, Literal["AND", "OR"]] = {"all": "AND", "and": "AND", "any": "OR", "or": "OR"}
"""An intent's group words (any case) and the Finout group each stands for."""
NOT_WORD = "not"

_FIELD_NAMES: dict[str, str] = {
    "key": "key",
    "costcenter": "cost_center",
    "op": "op",
    "operator": "op",
    "value": "value",
    "values": "value",
    "displayname": "display_name",
}

_SEPARATORS = re.compile(r"[\s_\-]+")


def _squash(text: str) -> str:
    return _SEPARATORS.sub("", text.strip()).lower()


def normalize_operator(op: str) -> str | None:
    """The Finout operator for ``op`` (any alias, case, snake/space/kebab spelling), else None."""
    return _OP_ALIASES.get(_squash(op))


def normalize_field(name: object) -> str | None:
    """A condition's field (``key``, ``cost_center``, ``op``, ``value``, ``display_name``) for any
    spelling of it (``costCenter``, ``cost-center``, ``operator``, ``values``…), else None."""
    return _FIELD_NAMES.get(_squash(str(name)))
