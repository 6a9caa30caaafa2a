"""Filter grammar of the Finout API: validation (as the API does it) and evaluation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

LIST_OPERATORS = frozenset({"oneOf", "notOneOf"})
STRING_OPERATORS = frozenset({"is", "isNot", "contains", "notContains"})
PRESENCE_OPERATORS = frozenset({"exists", "notExists"})
OPERATORS = LIST_OPERATORS | STRING_OPERATORS | PRESENCE_OPERATORS
_CONDITION_FIELDS = frozenset({"costCenter", "key", "operator", "value"})

# API v2 (finout-api-v2.md §2): `notIs` replaces `isNot`; conditions carry a `type` and may
# carry `displayName`; `value` is typed as an array, and is/notIs/contains/notContains are
# singular in meaning, so both a string and a one-item array are accepted (two readings).
V2_LIST_OPERATORS = LIST_OPERATORS
V2_SINGLE_OPERATORS = frozenset({"is", "notIs", "contains", "notContains"})
V2_OPERATORS = V2_LIST_OPERATORS | V2_SINGLE_OPERATORS | PRESENCE_OPERATORS
_V2_CONDITION_FIELDS = frozenset({"costCenter", "key", "type", "operator", "value", "displayName"})
V2_MAX_LEAVES = 30
V2_MAX_VIRTUAL_TAGS = 3


class FilterError(ValueError):
    """A filter that the API would reject; the message says where and why."""


def validate_filter(
    node: Any,
    key_exists: Callable[[str, str], bool] | None,
    path: str = "filters",
) -> None:
    """Raise FilterError unless ``node`` is a well-formed Finout filter.

    ``key_exists(costCenter, key)`` checks the pair against the key catalogue (None: skip).
    """
    if not isinstance(node, dict):
        raise FilterError(f"{path}: a filter must be an object (a condition or an AND/OR group)")
    if "displayName" in node:
        raise FilterError(f"{path}: 'displayName' must not be sent; remove it (GET adds it for display only)")
    if "AND" in node or "OR" in node:
        if len(node) != 1:
            raise FilterError(f"{path}: a group must have exactly one key, 'AND' or 'OR'")
        op = "AND" if "AND" in node else "OR"
        children = node[op]
        if not isinstance(children, list) or not children:
            raise FilterError(f"{path}.{op}: must be a non-empty list of filters")
        for i, child in enumerate(children):
            validate_filter(child, key_exists, f"{path}.{op}[{i}]")
        return
    extra = set(node) - _CONDITION_FIELDS
    if extra:
        raise FilterError(f"{path}: unexpected field(s) {sorted(extra)} in a condition")
    for name in ("costCenter", "key", "operator"):
        if not isinstance(node.get(name), str) or not node[name]:
            raise FilterError(f"{path}: a condition needs a non-empty string '{name}'")
    operator = node["operator"]
    if operator not in OPERATORS:
        raise FilterError(f"{path}: unknown operator '{operator}'; use one of {sorted(OPERATORS)}")
    if operator in LIST_OPERATORS:
        value = node.get("value")
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise FilterError(f"{path}: operator '{operator}' needs 'value' as a non-empty array of strings")
    elif operator in STRING_OPERATORS:
        if not isinstance(node.get("value"), str):
            raise FilterError(f"{path}: operator '{operator}' needs 'value' as one string")
    elif "value" in node:
        raise FilterError(f"{path}: operator '{operator}' takes no 'value'")
    if key_exists is not None and not key_exists(node["costCenter"], node["key"]):
        raise FilterError(
            f"{path}: unknown key '{node['key']}' in cost center '{node['costCenter']}' "
            "(see GET /megabill/query-language/keys)"
        )


def add_display_names(node: Any, display: Callable[[str, str], str]) -> Any:
    """A copy of a filter with ``displayName`` added to every condition (as GET returns it)."""
    if not isinstance(node, dict):
        return node
    for op in ("AND", "OR"):
        if op in node and isinstance(node[op], list):
            return {op: [add_display_names(child, display) for child in node[op]]}
    out = dict(node)
    if isinstance(node.get("costCenter"), str) and isinstance(node.get("key"), str):
        out["displayName"] = display(node["costCenter"], node["key"])
    return out


def matches(node: Mapping[str, Any], attrs: Mapping[tuple[str, str], str]) -> bool:
    """Evaluate a validated filter (v1 or v2) against a row's (costCenter, key) -> value attributes.

    v2's ``notIs`` is v1's ``isNot``; v2 may give the value of ``is``/``contains`` as a one-item array.
    """
    if "AND" in node:
        return all(matches(child, attrs) for child in node["AND"])
    if "OR" in node:
        return any(matches(child, attrs) for child in node["OR"])
    actual = attrs.get((node["costCenter"], node["key"]))
    operator = node["operator"]
    value = node.get("value")
    if operator in V2_SINGLE_OPERATORS and isinstance(value, list):
        value = value[0] if value else None
    if operator == "notIs":
        operator = "isNot"
    if operator == "exists":
        return bool(actual)
    if operator == "notExists":
        return not actual
    if operator == "oneOf":
        return actual is not None and isinstance(value, list) and actual in value
    if operator == "notOneOf":
        return actual is None or not isinstance(value, list) or actual not in value
    if operator == "is":
        return actual == value
    if operator == "isNot":
        return actual != value
    if operator == "contains":
        return actual is not None and str(value).lower() in actual.lower()
    if operator == "notContains":
        return actual is None or str(value).lower() not in actual.lower()
    return False


def validate_filter_v2(
    node: Any,
    key_types: Callable[[str, str], list[str] | None],
    path: str = "filters",
    *,
    virtual_tags: set[str] | None = None,
) -> int:
    """Raise FilterError unless ``node`` is a valid v2 filter; return its number of leaf conditions.

    ``key_types(costCenter, key)`` gives the types the key supports (None: unknown key).
    ``virtual_tags`` collects the ids of virtual tags the filter uses.
    """
    if not isinstance(node, dict):
        raise FilterError(f"{path}: a filter must be an object (a condition or an AND/OR group)")
    if "AND" in node or "OR" in node:
        if len(node) != 1:
            raise FilterError(f"{path}: a group must have exactly one key, 'AND' or 'OR'")
        op = "AND" if "AND" in node else "OR"
        children = node[op]
        if not isinstance(children, list):
            raise FilterError(f"{path}.{op}: must be a list of filters")
        return sum(
            validate_filter_v2(child, key_types, f"{path}.{op}[{i}]", virtual_tags=virtual_tags)
            for i, child in enumerate(children)
        )
    extra = set(node) - _V2_CONDITION_FIELDS
    if extra:
        raise FilterError(f"{path}: unexpected field(s) {sorted(extra)} in a condition")
    for name in ("costCenter", "key", "type", "operator"):
        if not isinstance(node.get(name), str) or not node[name]:
            raise FilterError(f"{path}: a condition needs a non-empty string '{name}'")
    operator = node["operator"]
    if operator == "isNot":
        raise FilterError(f"{path}: unknown operator 'isNot'; API v2 calls it 'notIs'")
    if operator not in V2_OPERATORS:
        raise FilterError(f"{path}: unknown operator '{operator}'; use one of {sorted(V2_OPERATORS)}")
    value = node.get("value")
    if operator in V2_LIST_OPERATORS:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise FilterError(f"{path}: operator '{operator}' needs 'value' as a non-empty array of strings")
    elif operator in V2_SINGLE_OPERATORS:
        one_item = isinstance(value, list) and len(value) == 1 and isinstance(value[0], str)
        if not (isinstance(value, str) or one_item):
            raise FilterError(f"{path}: operator '{operator}' needs 'value' as one string (or a one-item array)")
    elif "value" in node:
        raise FilterError(f"{path}: operator '{operator}' takes no 'value'")
    types = key_types(node["costCenter"], node["key"])
    if types is None:
        raise FilterError(
            f"{path}: unknown key '{node['key']}' in cost center '{node['costCenter']}' "
            "(see GET /v2/query-language/keys)"
        )
    if node["type"] not in types:
        raise FilterError(f"{path}: key '{node['key']}' has type(s) {types}, not '{node['type']}'")
    if node["type"] == "virtual_tag" and virtual_tags is not None:
        virtual_tags.add(node["key"])
    return 1
