"""The baseline for the cold-start benchmark: a bare one-tool MCPServer over stdio.

It imports only the MCP SDK, so `spawn -> initialize answered` for it is the floor any
server built on the SDK pays (interpreter start, SDK import, stdio transport).
"""

from mcp.server import MCPServer

server = MCPServer("bare")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


if __name__ == "__main__":
    server.run("stdio")
