"""The tool domains (``--toolsets``). Import-light: the CLI checks the flag before loading the server."""

from __future__ import annotations

from collections.abc import Iterable

# Domain name -> module under finout_mcp.server.tools (each has ``register(server, read_only=)``).
TOOLSETS: dict[str, str] = {
    "views": "views",
    "cost_query": "cost_query",
    "megabill": "megabill",
    "composer": "composer",
    "virtual_tags": "virtual_tags",
    "metadata": "metadata",
    "costguard": "costguard",
    "endpoints": "endpoints",
    "changes": "changes",
    "insights": "insights",
}


def parse_toolsets(value: str | Iterable[str] | None) -> list[str]:
    """``"views,costguard"`` -> validated list; ``None`` or ``"all"`` -> every toolset."""
    if value is None:
        return list(TOOLSETS)
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    if not names or names == ["all"]:
        return list(TOOLSETS)
    unknown = [n for n in names if n not in TOOLSETS]
    if unknown:
        raise ValueError(
            f"Unknown toolset(s): {', '.join(unknown)}. Choose from: {', '.join(TOOLSETS)} (comma-separated)."
        )
    return names
