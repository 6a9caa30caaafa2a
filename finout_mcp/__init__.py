"""finout-mcp: an MCP server for the Finout cloud-cost API."""

from importlib.metadata import PackageNotFoundError, version

try:
    # The one place the version lives is pyproject.toml; the installed metadata carries it here.
    __version__ = version("finout-mcp")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
