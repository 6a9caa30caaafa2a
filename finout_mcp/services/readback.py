"""Read-back verification: after a write, read the object again and name what differs.

Finout's answers to writes are not documented (finout-api.md "Corrections": "Nothing documents
... a PUT-metadata example"), so a write is trusted only once a fresh read shows it. The
typical failure is a body read in another way than we meant: the wrapped metadata body
``{"metadata": {...}}`` read as the bare map replaces every value with one value named
``metadata`` (finout-api.md, first correction).
"""

from __future__ import annotations

from finout_mcp.api.models import ValueMetadata
from finout_mcp.services.fencing import fence


def _names(values: list[str], limit: int = 6) -> str:
    shown = ", ".join(fence(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def metadata_mismatches(sent: dict[str, ValueMetadata], read: dict[str, ValueMetadata]) -> list[str]:
    """What the metadata read back lacks or has beyond what was sent (empty: it matches).

    Compared by content: list order, endpoint references as ids or objects, and an absent list
    versus an empty one do not count as differences.
    """
    problems: list[str] = []
    appeared = sorted(set(read) - set(sent))
    vanished = sorted(set(sent) - set(read))
    if "metadata" in appeared:
        problems.append("a value named `metadata` appeared, so Finout read the body in another shape")
        appeared.remove("metadata")
    if appeared:
        problems.append(f"values that were not written appeared: {_names(appeared)}")
    if vanished:
        problems.append(f"values that were written are missing: {_names(vanished)}")
    changed = sorted(v for v in set(sent) & set(read) if sent[v].comparable() != read[v].comparable())
    if changed:
        problems.append(f"values read back with other content: {_names(changed)}")
    return problems
