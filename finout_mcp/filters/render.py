"""A filter as one readable line: ``AWS.Account Name in [a, b] AND (AWS.Service = X OR ...)``.

Display names come from a function passed in (the key index's); account data that could
pass for instructions or markup is fenced (:mod:`finout_mcp.services.fencing`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from finout_mcp.filters.vocabulary import NO_VALUE_OPS, READABLE_OPS
from finout_mcp.services.fencing import fence, neutralise

DisplayName = Callable[[str, str], str | None]
"""``(cost_center, key)`` → the key's display name, or None when unknown."""


def _fmt_value(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v)
    if neutralise(s) != s:  # account data with line breaks, control or fence characters
        return fence(s)
    if not s or s != s.strip() or any(ch in s for ch in ',[]()"'):
        return json.dumps(s)
    return s


def render(node: Any, display: DisplayName, top: bool = True) -> str:
    """One line, display names. Tolerant of raw filters as returned by GET (``displayName`` used
    when ``display`` does not know the key) and of intents' ``cost_center``/``op`` spellings."""
    if not isinstance(node, dict):
        return "?"
    for word in ("AND", "OR"):
        if word in node and isinstance(node[word], list):
            parts = [render(c, display, top=False) for c in node[word]]
            text = f" {word} ".join(parts)
            return text if top or len(parts) <= 1 else f"({text})"
    cc = str(node.get("costCenter", node.get("cost_center", "?")))
    key = str(node.get("key", "?"))
    label = str(display(cc, key) or node.get("displayName") or key)
    if neutralise(label) != label:
        label = fence(label)
    op = str(node.get("operator", node.get("op", "?")))
    value = node.get("value")
    head = f"{cc}.{label} {READABLE_OPS.get(op, op)}"
    if op in NO_VALUE_OPS:
        return head
    if isinstance(value, list):
        return f"{head} [{', '.join(_fmt_value(v) for v in value)}]"
    return f"{head} {_fmt_value(value)}"
