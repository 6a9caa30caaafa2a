"""Assemble the MCP server: tools by domain, resources, prompts and instructions."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import (
    CallToolResult,
    EmptyResult,
    GetPromptResult,
    InputRequiredResult,
    SetLevelRequestParams,
)
from mcp.types import Tool as MCPTool
from pydantic import ValidationError

from finout_mcp import __version__
from finout_mcp.config import Settings
from finout_mcp.server.auth import ScopeGate
from finout_mcp.server.instructions import server_instructions
from finout_mcp.server.state import StateRef, build_lifespan
from finout_mcp.server.tools.common import ToolSpec, argument_size_problem, slim_schema
from finout_mcp.server.toolsets import parse_toolsets

if TYPE_CHECKING:
    from finout_mcp.accounts import Accounts
    from finout_mcp.sandbox import Sandbox


class FinoutServer(MCPServer[Any]):
    """An MCPServer whose tools are built on first use, and listed with slim schemas.

    Building 19 tools (pydantic argument models and JSON schemas) is the largest part of
    start-up, and ``initialize`` does not need them: they are made on the first ``tools/list``
    or ``tools/call``. The listing is computed once, with :func:`slim_schema` applied, so the
    model reads fewer bytes; arguments are still validated against the full pydantic models.

    With several accounts every tool is listed with an ``account`` argument, which each call
    names (or the default): :mod:`finout_mcp.server.accounts`.
    """

    def __init__(
        self, *args: Any, tool_loader: Callable[[], list[ToolSpec]], accounts: Accounts, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.accounts = accounts
        self._tool_loader: Callable[[], list[ToolSpec]] | None = tool_loader
        self._listing: list[MCPTool] | None = None
        self._write_tools: frozenset[str] = frozenset()

    def ensure_tools(self) -> None:
        if self._tool_loader is None:
            return
        from finout_mcp.server.errors import tool_guard

        specs = self._tool_loader()
        self._write_tools = frozenset(s.name for s in specs if not s.read_only)
        for spec in specs:  # every tool enters the server here
            self.add_tool(
                tool_guard(spec.fn),
                name=spec.name,
                title=spec.title,
                description=spec.description,
                annotations=spec.annotations,
            )
        self._tool_loader = None
        # Everything built so far (modules, schemas, validators) lives as long as the process:
        # move it out of the collector's reach so a large answer does not pay for rescanning it.
        gc.freeze()

    def write_tools(self) -> frozenset[str]:
        """Names of the tools that change the account (hidden from read-only OAuth callers)."""
        self.ensure_tools()
        return self._write_tools

    async def list_tools(self) -> list[MCPTool]:
        self.ensure_tools()
        if self._listing is None:
            self._listing = [
                t.model_copy(
                    update={
                        "input_schema": slim_schema(t.input_schema),
                        "output_schema": None
                        if t.output_schema is None
                        else slim_schema(t.output_schema, output=True),
                    }
                )
                for t in await super().list_tools()
            ]
            if self.accounts.multi:
                from finout_mcp.server.accounts import with_account

                self._listing = [with_account(t, self.accounts) for t in self._listing]
        return self._listing

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any, Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        from finout_mcp.server.prompts import bad_prompt_value, check_prompt_request

        check_prompt_request(await self.list_prompts(), name, arguments)
        try:
            return await super().get_prompt(name, arguments, context)
        except ValueError as exc:  # the SDK's wrapper around a value the prompt's types refuse
            raise bad_prompt_value(name, exc) from None

    async def run_stdio_async(self) -> None:
        from finout_mcp.server.stdio import run_stdio

        await run_stdio(self)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        self.ensure_tools()
        # Walking a large argument tree takes a while: off the event loop, like the rest of the heavy work.
        too_big = await anyio.to_thread.run_sync(argument_size_problem, arguments)
        if too_big is not None:
            raise ToolError(f"Arguments too large: {too_big}. Send less per call (split the work).")
        if not self.accounts.multi:
            return await self._call(name, arguments, context)
        from finout_mcp.server.accounts import in_account, name_account, pick_account
        from finout_mcp.server.state import using_account

        account, rest = pick_account(self.accounts, name, arguments)
        if account is None:
            return await self._call(name, rest, context)
        with using_account(account):
            try:
                result = await self._call(name, rest, context)
            except ToolError as exc:
                raise in_account(exc, name, account) from exc.__cause__
        return name_account(result, account)

    async def _call(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                # The SDK's text repeats the rejected values (a webhook URL given as a list, say):
                # name the fields and what is wrong, never the values.
                from finout_mcp.server.errors import describe

                raise ToolError(describe(cause)) from cause
            raise


def build_server(
    settings: Settings,
    *,
    accounts: Accounts | None = None,
    toolsets: Iterable[str] | None = None,
    sandbox: Sandbox | None = None,
    sandboxes: Mapping[str, Sandbox] | None = None,
    today: Callable[[], date] | None = None,
    actor: Callable[[Any], str] | None = None,
) -> FinoutServer:
    """The MCP server for these settings. Nothing touches the network until the lifespan runs.
    ``accounts``: the configured accounts (default: :func:`~finout_mcp.accounts.load_accounts`);
    ``sandbox`` / ``sandboxes``: in demo mode, the sandbox of the (first) account / of each
    account by name. ``actor``: who the change log records for a write, from the request context
    (default: the OAuth subject who signed in over HTTP, else the OS user)."""
    from finout_mcp.accounts import load_accounts

    accounts = accounts if accounts is not None else load_accounts(settings)
    by_name = dict(sandboxes or {})
    if sandbox is not None:
        by_name.setdefault(accounts.names[0], sandbox)
    ref = StateRef()
    chosen = parse_toolsets(list(toolsets) if toolsets is not None else None)

    def load_tools() -> list[ToolSpec]:
        from finout_mcp.server.tools.registry import select

        # write tools are listed while any account takes writes (a read-only one refuses them);
        # list_accounts only with several accounts (with one there is nothing to choose)
        return select(chosen, read_only=not accounts.any_writable, several_accounts=accounts.multi)

    server = FinoutServer(
        "finout-mcp",
        title="Finout",
        version=__version__,
        instructions=server_instructions(accounts),
        tool_loader=load_tools,
        accounts=accounts,
        lifespan=build_lifespan(settings, accounts=accounts, sandboxes=by_name, today=today, ref=ref, actor=actor),
        log_level=settings.log_level.upper() if settings.log_level.upper() in _LEVELS else "WARNING",
    )
    _accept_log_level(server)
    server.middleware.append(ScopeGate(server.write_tools))
    from finout_mcp.server import prompts, resources

    resources.register(server, ref, accounts)
    prompts.register(server)
    return server


_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
_MCP_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emergency": logging.CRITICAL,
}


def _accept_log_level(server: MCPServer[Any]) -> None:
    """Answer ``logging/setLevel`` by setting the verbosity of the server's stderr log.

    Protocol log notifications are deprecated in the SDK (logs go to stderr), but clients of
    the 2025 revisions still send this request; it must not fail with "method not found".
    The SDK has no public hook for it, hence the low-level server.
    """

    async def set_level(_ctx: Any, params: SetLevelRequestParams) -> EmptyResult:
        logging.getLogger("finout_mcp").setLevel(_MCP_LEVELS.get(str(params.level), logging.WARNING))
        return EmptyResult()

    server._lowlevel_server.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)
