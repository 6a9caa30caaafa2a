"""The ``account`` argument of every tool, when several Finout accounts are configured.

With one account nothing here applies: the tools, their schemas and their results are exactly
those of a single-account server (a user with one account pays nothing in ``tools/list``). With
several (``FINOUT_MCP_ACCOUNTS_FILE``), :class:`~finout_mcp.server.app.FinoutServer`:

- lists every tool with an ``account`` argument (the configured names as an enum; required unless
  the file names a default) and an ``account`` field in its output schema
  (:func:`with_account`);
- on each call takes ``account`` out of the arguments, checks it against the configured names
  (did-you-mean on a typo), and runs the tool for that account (:func:`call_for_account`), whose
  result names the account (:func:`name_account`) and whose errors say which account they are from.

Tools themselves never see the argument: :func:`~finout_mcp.server.state.get_state` gives them the
services of the account the call is for.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from mcp.types import Tool as MCPTool

from finout_mcp.accounts import Accounts, UnknownAccount

ACCOUNT = "account"
UNSCOPED_TOOLS = frozenset({"list_accounts"})
"""Tools about the configured accounts themselves: they take no ``account``."""


def account_schema(accounts: Accounts) -> dict[str, Any]:
    """The JSON schema of the ``account`` argument (short: it is repeated on every tool)."""
    said = f"default {accounts.default}" if accounts.default is not None else "required"
    return {"type": "string", "enum": accounts.names, "description": f"Finout account ({said})."}


def with_account(tool: MCPTool, accounts: Accounts) -> MCPTool:
    """``tool`` as listed with several accounts: an ``account`` argument, and results that name it."""
    if tool.name in UNSCOPED_TOOLS:
        return tool
    schema = dict(tool.input_schema)
    schema["properties"] = {ACCOUNT: account_schema(accounts), **(schema.get("properties") or {})}
    if accounts.default is None:
        schema["required"] = [ACCOUNT, *(schema.get("required") or [])]
    update: dict[str, Any] = {"input_schema": schema}
    if tool.output_schema is not None:
        out = dict(tool.output_schema)
        out["properties"] = {ACCOUNT: {"type": "string"}, **(out.get("properties") or {})}
        out["required"] = [ACCOUNT, *(out.get("required") or [])]
        update["output_schema"] = out
    return tool.model_copy(update=update)


def pick_account(accounts: Accounts, tool: str, arguments: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The account a call is for (None: the tool takes none) and the arguments left for the tool."""
    if tool in UNSCOPED_TOOLS:
        return None, arguments
    rest = dict(arguments)
    requested = rest.pop(ACCOUNT, None)
    if requested is not None and not isinstance(requested, str):
        raise ToolError(f"account must be one of the configured names: {', '.join(accounts.names)}.")
    try:
        return accounts.pick(requested.strip() if requested else None).name, rest
    except UnknownAccount as exc:
        raise ToolError(str(exc)) from None


def name_account(result: Any, account: str) -> Any:
    """A tool's result naming its account: ``account`` first in its structured content and its text."""
    if not isinstance(result, CallToolResult) or result.is_error:
        return result
    structured = result.structured_content
    if structured is None or ACCOUNT in structured:
        return result
    content = list(result.content)
    if content and isinstance(content[0], TextContent) and content[0].text.startswith("{"):
        body = content[0].text[1:]
        head = f'{{"{ACCOUNT}":{json.dumps(account, ensure_ascii=False)}'
        content[0] = content[0].model_copy(update={"text": head + ("" if body == "}" else ",") + body})
    return result.model_copy(update={"structured_content": {ACCOUNT: account, **structured}, "content": content})


def in_account(exc: ToolError, tool: str, account: str) -> ToolError:
    """The same error, saying which account it came from (after the SDK's "Error executing tool" head)."""
    text = str(exc)
    head = f"Error executing tool {tool}: "
    if text.startswith(head):
        return ToolError(f"{head}[account {account}] {text[len(head) :]}")
    return ToolError(f"[account {account}] {text}")
