"""finout-mcp: an MCP server for the Finout cloud-cost API."""

__version__ = "0.1.0"
