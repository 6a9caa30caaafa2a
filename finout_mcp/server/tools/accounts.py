"""``list_accounts``: the Finout accounts this server is configured for (only listed when there are
several; with one there is nothing to choose)."""

from __future__ import annotations

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from finout_mcp.server.state import get_run
from finout_mcp.server.tools.common import READ, ToolSpec
from finout_mcp.services.results import Envelope


class AccountItem(BaseModel):
    name: str = Field(description="Pass it as account to the other tools.")
    read_only: bool = Field(description="true: the write tools refuse this account.")
    default: bool = Field(description="true: the account a call without account uses.")


class AccountList(Envelope):
    accounts: list[AccountItem]


async def list_accounts(ctx: Context) -> AccountList:
    """The Finout accounts this server can reach: their names (the account argument of every other
    tool), which is the default, and which are read-only. Ids, names and change_ids belong to one
    account: use them only with the account they came from."""
    accounts = get_run(ctx).accounts
    items = [
        AccountItem(name=a.name, read_only=a.read_only, default=a.name == accounts.default)
        for a in accounts.accounts
    ]
    notes = [
        "Every other tool takes account="
        + ("<name>, required." if accounts.default is None else f"<name>; without it, {accounts.default!r}.")
    ]
    return AccountList(accounts=items, notes=notes)


TOOLS = (ToolSpec(list_accounts, READ, "List the Finout accounts"),)
