"""The tool domains (``--toolsets``). Import-light: the CLI checks the flag before loading the server.

Each name is a module under :mod:`finout_mcp.server.tools`; the registry
(:mod:`finout_mcp.server.tools.registry`) maps it to that module's tools and checks, at
start-up, that it knows exactly these names.
"""

from __future__ import annotations

from collections.abc import Iterable

TOOLSET_NAMES: tuple[str, ...] = (
    "views",
    "cost_query",
    "megabill",
    "composer",
    "virtual_tags",
    "metadata",
    "costguard",
    "endpoints",
    "changes",
    "insights",
)


def parse_toolsets(value: str | Iterable[str] | None) -> list[str]:
    """``"views,costguard"`` -> validated list; ``None`` or ``"all"`` -> every toolset."""
    if value is None:
        return list(TOOLSET_NAMES)
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    if not names or names == ["all"]:
        return list(TOOLSET_NAMES)
    unknown = [n for n in names if n not in TOOLSET_NAMES]
    if unknown:
        raise ValueError(
            f"Unknown toolset(s): {', '.join(unknown)}. Choose from: {', '.join(TOOLSET_NAMES)} (comma-separated)."
        )
    return names
