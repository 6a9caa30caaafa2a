"""Serve the sandbox: ``python -m finout_mcp.sandbox [--host H] [--port P] [--seed N] [--scale S]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from finout_mcp.sandbox.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m finout_mcp.sandbox", description="Serve the sandbox Finout API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", choices=["demo", "large"], default="demo")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, seed=args.seed, scale=args.scale, latency_ms=args.latency_ms))


if __name__ == "__main__":
    main()
