"""Assemble the MCP server: tools by domain, resources, prompts and instructions."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from datetime import date
from typing import TYPE_CHECKING, Any

from mcp.server import MCPServer

from finout_mcp import __version__
from finout_mcp.config import Settings
from finout_mcp.server.instructions import INSTRUCTIONS
from finout_mcp.server.state import StateRef, build_lifespan
from finout_mcp.server.tools.common import ToolCollector

if TYPE_CHECKING:
    from finout_mcp.sandbox import Sandbox

# Domain name -> module under finout_mcp.server.tools (each has ``register(server, read_only=)``).
TOOLSETS: dict[str, str] = {
    "views": "views",
    "megabill": "megabill",
    "composer": "composer",
    "virtual_tags": "virtual_tags",
    "metadata": "metadata",
    "costguard": "costguard",
    "endpoints": "endpoints",
    "changes": "changes",
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


def build_server(
    settings: Settings,
    *,
    toolsets: Iterable[str] | None = None,
    sandbox: Sandbox | None = None,
    today: Callable[[], date] | None = None,
) -> MCPServer[Any]:
    """The MCP server for these settings. Nothing touches the network until the lifespan runs."""
    ref = StateRef()
    collector = ToolCollector()
    for name in parse_toolsets(list(toolsets) if toolsets is not None else None):
        module = importlib.import_module(f"finout_mcp.server.tools.{TOOLSETS[name]}")
        module.register(collector, read_only=settings.read_only)
    server: MCPServer[Any] = MCPServer(
        "finout-mcp",
        title="Finout",
        version=__version__,
        instructions=INSTRUCTIONS,
        tools=collector.tools,
        lifespan=build_lifespan(settings, sandbox=sandbox, today=today, ref=ref),
        log_level=settings.log_level.upper() if settings.log_level.upper() in _LEVELS else "WARNING",  # type: ignore[arg-type]
    )
    from finout_mcp.server import prompts, resources

    resources.register(server, ref)
    prompts.register(server)
    return server


_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
