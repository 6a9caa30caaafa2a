"""Container health check for finout-mcp: healthy when its HTTP server answers.

Reads the server's own command line (PID 1) to learn the mode and port. In stdio mode there is
nothing to probe, so it reports healthy. In HTTP mode it asks GET /healthz (no token needed);
a server from before that route (404, or 401 behind a token) still proved it is up by answering.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path


def option(args: list[str], name: str, default: str) -> str:
    """The value of ``--name VALUE`` or ``--name=VALUE`` (the last one wins, as in argparse)."""
    value = default
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def check(args: list[str]) -> int:
    """0 when the finout-mcp started with ``args`` is healthy (or has no HTTP server), else 1."""
    if option(args, "--transport", "stdio") == "stdio":
        return 0
    port = option(args, "--port", "8000")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        # A server from before /healthz answers 404 (or 401 behind its token): up all the same.
        return 0 if exc.code in (401, 404) else 1
    except OSError as exc:
        sys.stderr.write(f"finout-mcp health check: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(check(Path("/proc/1/cmdline").read_bytes().decode(errors="replace").split("\0")))
