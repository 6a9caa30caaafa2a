"""Command line: ``finout-mcp [--demo] [--read-only] [--transport ...]``, ``finout-mcp sandbox`` and
``finout-mcp doctor [--demo]`` (its logic lives in :mod:`finout_mcp.doctor`).

Kept small and import-light: heavy modules load only once we know what to run.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from finout_mcp import __version__

TTY_HELP = """\
finout-mcp {version} is an MCP server: it speaks JSON-RPC on stdin/stdout and is meant to be
started by an MCP client, not typed at. To use it:
  Claude Desktop: add it to claude_desktop_config.json (see clients/claude-desktop.json)
  Claude Code:    claude mcp add finout -- finout-mcp{demo_flag}
  Inspector:      npx @modelcontextprotocol/inspector finout-mcp{demo_flag}
  Over HTTP:      finout-mcp{demo_flag} --transport streamable-http --port 8000  (then http://127.0.0.1:8000/mcp)
Waiting for a client on stdin; press Ctrl-C to quit.
"""


EXIT_CODES = """\
exit codes:
  0  stopped: stdin closed (every request read was answered first), Ctrl-C, or SIGTERM
  2  bad command line or configuration: one paragraph on stderr names the option or variable
  1  anything else (the message on stderr says what)
  finout-mcp doctor: 0 every response recognised, 1 a mismatch, 2 configuration
"""


class _Parser(argparse.ArgumentParser):
    """The top-level parser: ``--help`` ends with the environment variables and exit codes."""

    def format_help(self) -> str:
        from finout_mcp.config import environment_help  # only --help pays for pydantic-settings

        return f"{super().format_help()}\n{environment_help()}\n{EXIT_CODES}"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="finout-mcp",
        description="MCP server for the Finout cloud-cost API (stdio by default). "
        "Credentials come from the environment (below); --demo needs none.",
    )
    p.add_argument("--version", action="version", version=f"finout-mcp {__version__}")
    p.add_argument("--demo", action="store_true", help="serve the built-in sandbox account (no credentials)")
    p.add_argument(
        "--read-only",
        action="store_true",
        help="do not even list the write tools (or FINOUT_MCP_READ_ONLY=1)",
    )
    p.add_argument(
        "--transport",
        choices=["stdio", "sse", "streamable-http"],
        default="stdio",
        help="stdio (default: a client starts the server), or serve HTTP on --host/--port",
    )
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument(
        "--stateless",
        action="store_true",
        help="streamable HTTP without server-side sessions (for several replicas behind a load balancer)",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="extra Host header to accept (e.g. the load balancer's name); repeatable",
    )
    p.add_argument(
        "--toolsets",
        default=None,
        help="comma-separated domains to expose: views,cost_query,megabill,composer,virtual_tags,metadata,"
        "costguard,endpoints,changes,insights (default all)",
    )
    p.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default), ERROR; logs go to stderr")
    sub = p.add_subparsers(dest="command", parser_class=argparse.ArgumentParser)
    sb = sub.add_parser(
        "sandbox",
        help="serve the sandbox Finout API over HTTP (for curl, tests, benchmarks)",
        description="Serve the built-in Finout API simulator (the account --demo uses) over HTTP at "
        "http://HOST:PORT/v1. Any x-finout-client-id / x-finout-secret-key pair is accepted; the "
        "/_sandbox control routes (fault injection) have no authentication, so keep it on loopback.",
    )
    sb.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    sb.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    sb.add_argument(
        "--seed", type=int, default=7, help="seed of the generated account: same seed, same data (default 7)"
    )
    sb.add_argument(
        "--scale",
        choices=["demo", "large"],
        default="demo",
        help="demo: the small account of --demo; large: a large account for benchmarks (default demo)",
    )
    sb.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="added delay per API request, milliseconds, to mimic a remote Finout (default 0)",
    )
    doc = sub.add_parser(
        "doctor",
        help="read-only check of the credentials and of every response shape; run it before trusting writes",
        description="Calls every read operation of the Finout API once, validates each answer strictly and "
        "prints one line per operation; with FINOUT_MCP_ACCOUNTS_FILE, for every account. Sends no write. "
        "Exit 0: all recognised; 1: a mismatch; 2: configuration.",
    )
    # its own dest: a subparser's default would otherwise reset `finout-mcp --demo doctor`
    doc.add_argument("--demo", dest="doctor_demo", action="store_true", help="check the built-in sandbox account")
    return p


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if level.upper() in logging.getLevelNamesMapping() else "WARNING")
    # httpcore's DEBUG trace prints raw response headers, which a misbehaving server or proxy may
    # fill with anything it was sent (the secret key): never let it reach the log.
    logging.getLogger("httpcore").setLevel(logging.INFO)


def _fail(message: str) -> int:
    sys.stderr.write(f"finout-mcp: {message}\n")
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level or os.environ.get("FINOUT_MCP_LOG_LEVEL", "WARNING"))

    if args.command == "sandbox":
        import anyio

        from finout_mcp.sandbox import serve
        from finout_mcp.server.http import is_loopback

        if not is_loopback(args.host):
            sys.stderr.write(
                "finout-mcp: warning: the sandbox is a test tool and its /_sandbox control routes have no "
                "authentication; bind it to 127.0.0.1 unless you mean to expose it.\n"
            )
        sys.stderr.write(f"finout-mcp: sandbox Finout API on http://{args.host}:{args.port}/v1\n")
        with contextlib.suppress(KeyboardInterrupt):
            anyio.run(
                lambda: serve(args.host, args.port, seed=args.seed, scale=args.scale, latency_ms=args.latency_ms)
            )
        return 0

    if args.command == "doctor":
        from finout_mcp import doctor
        from finout_mcp.accounts import load_accounts
        from finout_mcp.config import ConfigError, load_settings

        try:
            settings = load_settings(demo=args.demo or args.doctor_demo)
            accounts = load_accounts(settings)
        except ConfigError as exc:
            return _fail(str(exc))
        # the doctor is a report for a person, not the stdio transport: stdout is its own
        return doctor.main(settings, sys.stdout.write, accounts=accounts)

    from finout_mcp.server.toolsets import parse_toolsets

    try:
        toolsets = parse_toolsets(args.toolsets)
    except ValueError as exc:
        return _fail(f"--toolsets: {exc}")
    if args.stateless and args.transport != "streamable-http":
        return _fail("--stateless applies to --transport streamable-http only; drop it or change the transport.")

    from finout_mcp.accounts import load_accounts
    from finout_mcp.config import ConfigError, load_settings

    overrides: dict[str, object] = {"demo": args.demo}
    if args.read_only:
        overrides["read_only"] = True
    if args.log_level:
        overrides["log_level"] = args.log_level
    try:
        settings = load_settings(**overrides)
        accounts = load_accounts(settings)
    except ConfigError as exc:
        return _fail(str(exc))

    token = settings.auth_token.get_secret_value() if settings.auth_token else None
    if args.transport != "stdio":
        from finout_mcp.server.http import is_loopback

        if not is_loopback(args.host) and not token and not settings.oauth_enabled:
            return _fail(
                f"refusing to serve HTTP on {args.host}, which is not a loopback address, without a token. "
                "Set FINOUT_MCP_AUTH_TOKEN to a long random secret (clients then send "
                "'Authorization: Bearer <token>'), or FINOUT_MCP_OAUTH_ISSUER to sign users in with your "
                "identity provider, or bind --host 127.0.0.1."
            )
        if settings.oauth_enabled and not settings.public_url and not is_loopback(args.host):
            return _fail(
                "FINOUT_MCP_OAUTH_ISSUER is set but FINOUT_MCP_PUBLIC_URL is not: set it to the URL clients use "
                "to reach this server (e.g. https://mcp.example.com/mcp); access tokens must be issued for it."
            )
        if not 0 < args.port < 65536:
            return _fail(f"--port {args.port} is not a TCP port; use 1-65535.")

    from finout_mcp.server.app import build_server

    server = build_server(settings, accounts=accounts, toolsets=toolsets)
    # SIGTERM (a client closing the server, `docker stop`) takes the same orderly way out as
    # Ctrl-C; without a handler a container's PID 1 would ignore it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    try:
        if args.transport == "stdio":
            if sys.stdin.isatty():
                sys.stderr.write(TTY_HELP.format(version=__version__, demo_flag=" --demo" if args.demo else ""))
                # A person at a terminal, no client: Ctrl-C ends the process there and then. Left to the
                # event loop, a SIGINT that arrives while the loop is still starting could be taken as a
                # task cancellation and swallowed, and the server waited on.
                signal.signal(signal.SIGINT, lambda *_: os._exit(0))
            server.run("stdio")
        else:
            import anyio

            from finout_mcp.server.http import build_http_app, serve_http, url_host

            app = build_http_app(
                server,
                args.transport,
                host=args.host,
                port=args.port,
                token=token,
                settings=settings,
                stateless=args.stateless,
                extra_hosts=args.allowed_host,
            )
            path = "/sse" if args.transport == "sse" else "/mcp"
            sys.stderr.write(
                f"finout-mcp: serving {args.transport} on http://{url_host(args.host)}:{args.port}{path}"
                + (f" (OAuth: {settings.oauth_issuer})" if settings.oauth_enabled else "")
                + "\n"
            )
            anyio.run(serve_http, app, args.host, args.port, settings.log_level)
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:  # uvicorn exits when it cannot listen; it logged the reason above
        if exc.code in (0, None):
            return 0
        return _fail(
            f"could not serve on {args.host}:{args.port} (the reason is logged above): choose a free "
            "port with --port, or stop what listens there."
        )
    return 0
