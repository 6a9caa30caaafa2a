"""Two server processes racing on one tag: no update is ever lost.

Two ``finout-mcp`` stdio processes share one state dir (the change log and its per-tag locks)
and one ``finout-mcp sandbox`` over HTTP (with latency, so their reads and writes overlap).
In every round one process changes the tag's default value and the other its rules, at once.
Either both changes land (the second was planned on the first's result), or one is refused
with the reason; a write reported ``updated`` whose change is not in the final tag is a lost
update, and there must be none.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import FinoutProcess, free_port, server_env

pytestmark = pytest.mark.slow

ROUNDS = 6
HEADERS = {"x-finout-client-id": "race", "x-finout-secret-key": "race"}


async def _tag(url: str, name: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        tags = (await http.get(f"{url}/v1/virtual-tags", headers=HEADERS)).json()["virtualTags"]
    found: dict[str, Any] = next(t for t in tags if t["name"] == name)
    return found


def _params(state: Path, url: str) -> StdioServerParameters:
    env = server_env(state, FINOUT_API_URL=f"{url}/v1", FINOUT_CLIENT_ID="race", FINOUT_SECRET_KEY="race")
    return StdioServerParameters(command=sys.executable, args=["-m", "finout_mcp"], env=env)


async def test_two_processes_racing_on_one_tag_lose_no_update(tmp_path: Path) -> None:
    port = free_port()
    sandbox = FinoutProcess(
        ["sandbox", "--port", str(port)], server_env(tmp_path / "unused"), tmp_path / "sb.err", port=port
    )
    sandbox.wait_ready()
    state = tmp_path / "state"  # shared by both servers
    lost = refused = both = 0
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            (await http.post(f"{sandbox.url}/_sandbox/faults", json={"latency_ms": 60})).raise_for_status()
        async with Client(_params(state, sandbox.url)) as a, Client(_params(state, sandbox.url)) as b:
            for n in range(ROUNDS):
                default = f"shared-{n}"
                rule = {"to": f"round-{n}", "filter": {"key": "Account Name", "op": "=", "value": "prod-eu"}}
                current = await _tag(sandbox.url, "Environment")
                rules = [{"to": r["to"], "filter": r["filters"]} for r in current["rules"][:1]] + [rule]
                results: dict[str, Any] = {}

                async def run(
                    name: str, client: Client, args: dict[str, Any], out: dict[str, Any] = results
                ) -> None:
                    out[name] = await client.call_tool("update_virtual_tag", {"tag": "Environment", **args})

                async with anyio.create_task_group() as tg:
                    tg.start_soon(run, "default", a, {"default_value": default})
                    tg.start_soon(run, "rules", b, {"rules": rules})
                final = await _tag(sandbox.url, "Environment")
                landed = {
                    "default": final["defaultValue"] == default,
                    "rules": any(r["to"] == f"round-{n}" for r in final["rules"]),
                }
                for name, result in results.items():
                    message = "".join(getattr(c, "text", "") for c in result.content)
                    if result.is_error:
                        assert "another writer" in message and "Nothing was sent" in message, message
                        assert not landed[name]
                        refused += 1
                    else:
                        assert result.structured_content["status"] == "updated", message
                        lost += 0 if landed[name] else 1
                if all(landed.values()):
                    both += 1
        summary = f"races={ROUNDS} lost={lost} refused={refused} both_landed={both}"
        assert lost == 0, summary
        assert refused + both == ROUNDS, summary  # every round: one refused with the reason, or both landed
    finally:
        sandbox.stop()
