"""Virtual tags evaluated on cost rows, as Finout allocates: the first matching rule wins.

A rule applies only within its ``timeframe`` (when it has one); a rule whose ``to`` is another
tag (``{"key": <tag id>, "costCenter": "Virtual Tags"}``) gives that tag's value; a row no rule
matches gets the tag's ``defaultValue``. Filters may test other tags' values, so tags are
evaluated on demand, each at most once per row, and a reference cycle yields no value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from finout_mcp.sandbox.catalog import VIRTUAL_TAGS
from finout_mcp.sandbox.costs import DAY_MS, Attrs, Line, day_ms
from finout_mcp.sandbox.filters import matches


def _active(rule: Mapping[str, Any], day_start: int) -> bool:
    tf = rule.get("timeframe")
    if not isinstance(tf, dict):
        return True
    start, end = tf.get("from"), tf.get("to")
    day_end = day_start + DAY_MS - 1
    if isinstance(start, int) and day_end < start:
        return False
    return not (isinstance(end, int) and day_start > end)


class RowWithTags(Mapping[tuple[str, str], str]):
    """A row's attributes plus every virtual tag's value, computed when first asked for."""

    def __init__(self, attrs: Attrs, tags: Mapping[str, Mapping[str, Any]], day: dt.date) -> None:
        self._attrs = attrs
        self._tags = tags
        self._day_start = day_ms(day)
        self._values: dict[str, str | None] = {}
        self._busy: set[str] = set()

    def tag_value(self, tag_id: str) -> str | None:
        if tag_id in self._values:
            return self._values[tag_id]
        tag = self._tags.get(tag_id)
        if tag is None or tag_id in self._busy:
            return None  # unknown tag, or a reference cycle
        self._busy.add(tag_id)
        try:
            value = self._evaluate(tag)
        finally:
            self._busy.discard(tag_id)
        self._values[tag_id] = value
        return value

    def _evaluate(self, tag: Mapping[str, Any]) -> str | None:
        for rule in tag.get("rules", []):
            if not isinstance(rule, dict) or not _active(rule, self._day_start):
                continue
            if matches(rule.get("filters", {}), self):
                to = rule.get("to")
                if isinstance(to, dict):
                    return self.tag_value(str(to.get("key")))
                return to if isinstance(to, str) else None
        default = tag.get("defaultValue")
        if isinstance(default, str):
            return default or None
        if isinstance(default, dict):  # a MegaBill key as default: that key's value on the row
            return self._attrs.get((str(default.get("costCenter")), str(default.get("key"))))
        return None

    def __getitem__(self, pair: tuple[str, str]) -> str:
        value = self.tag_value(pair[1]) if pair[0] == VIRTUAL_TAGS else self._attrs.get(pair)
        if value is None:
            raise KeyError(pair)
        return value

    def __iter__(self) -> Iterator[tuple[str, str]]:
        yield from self._attrs
        for tag_id in self._tags:
            if self.tag_value(tag_id) is not None:
                yield (VIRTUAL_TAGS, tag_id)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Allocator:
    """Rows with their tags' values, memoised per line and per set of active timeframed rules
    (a tag's value changes with the day only where a rule has a timeframe)."""

    def __init__(self, tags: Mapping[str, Mapping[str, Any]]) -> None:
        self._tags = tags
        self.version = 0
        self._rows: dict[tuple[int, tuple[bool, ...]], dict[tuple[str, str], str]] = {}
        self._timeframed: list[Mapping[str, Any]] | None = None

    def changed(self) -> None:
        """The tags changed: forget every evaluated row."""
        self.version += 1
        self._rows.clear()
        self._timeframed = None

    def _signature(self, day: dt.date) -> tuple[bool, ...]:
        if self._timeframed is None:
            self._timeframed = [
                r
                for t in self._tags.values()
                for r in t.get("rules", [])
                if isinstance(r, dict) and isinstance(r.get("timeframe"), dict)
            ]
        start = day_ms(day)
        return tuple(_active(r, start) for r in self._timeframed)

    def row(self, line: Line, day: dt.date) -> Attrs:
        key = (line.id, self._signature(day))
        hit = self._rows.get(key)
        if hit is not None:
            return hit
        row = RowWithTags(line.attrs, self._tags, day)
        out = dict(line.attrs)
        for tag_id in self._tags:
            value = row.tag_value(tag_id)
            if value is not None:
                out[(VIRTUAL_TAGS, tag_id)] = value
        self._rows[key] = out
        return out
