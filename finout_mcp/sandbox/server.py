"""Serve the sandbox over HTTP with uvicorn (loopback by default; logs go to stderr)."""

from __future__ import annotations

import ipaddress
import logging
import sys

import uvicorn

from finout_mcp.sandbox.app import Sandbox

logger = logging.getLogger("finout_mcp.sandbox")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    seed: int = 7,
    scale: str = "demo",
    latency_ms: float = 0,
) -> None:
    """Run the sandbox Finout API until cancelled. Control routes live under /_sandbox/."""
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not _is_loopback(host):
        logger.warning("sandbox bound to non-loopback host %s: its control routes have no auth", host)
    sandbox = Sandbox(seed=seed, scale=scale)
    sandbox.faults.latency_ms = float(latency_ms)
    config = uvicorn.Config(
        sandbox.app,
        host=host,
        port=port,
        log_config=None,  # keep uvicorn's loggers on our stderr handlers (never stdout)
        access_log=False,
        lifespan="off",
    )
    logger.info("sandbox Finout API on http://%s:%d/v1 (seed=%d, scale=%s)", host, port, seed, scale)
    await uvicorn.Server(config).serve()
