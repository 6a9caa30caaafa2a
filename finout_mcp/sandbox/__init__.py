"""A faithful Finout v1 API simulator (ASGI) with a seeded demo account and fault switches."""

from finout_mcp.sandbox.app import Sandbox
from finout_mcp.sandbox.faults import Fault, FaultSwitchboard, RequestRecord, Stats
from finout_mcp.sandbox.server import serve

__all__ = ["Fault", "FaultSwitchboard", "RequestRecord", "Sandbox", "Stats", "serve"]
