"""The client configs in clients/ are valid, and every stdio entry in them really starts the server.

Each entry is launched the way its client would (its command, args and env, as written, with the
placeholders filled in and ``--demo`` added) and must answer ``tools/list``:

- the published form (``uvx finout-mcp``) resolves ``finout-mcp`` from a wheel built from this
  checkout (``UV_FIND_LINKS``), which is what PyPI will serve once it is published;
- the checkout form (``uvx --from /ABSOLUTE/PATH/TO/finout-mcp finout-mcp``) builds this checkout;
- the absolute-path form runs this checkout's ``.venv/bin/finout-mcp``.

uv gets a private cache; after the first two launches fill it, the rest run with ``UV_OFFLINE=1``,
which shows that uvx needs no network once it has run.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.support import READ_TOOLS, WRITE_TOOLS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ROOT / "clients"
PLACEHOLDER = "/ABSOLUTE/PATH/TO/finout-mcp"
JSON_CONFIGS = {
    "claude-desktop.json": "mcpServers",
    "cursor.json": "mcpServers",
    "vscode.json": "servers",
    "windsurf.json": "mcpServers",
}
BIN = Path(sys.executable).parent  # the dev venv's bin: uv and uvx come from the dev extra


@dataclass
class Entry:
    origin: str
    command: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def form(self) -> str:
        if self.command == "uvx":
            return "uvx-checkout" if "--from" in self.args else "uvx-published"
        return "absolute-path"


def stdio_entries() -> list[Entry]:
    entries = []
    for name, top in JSON_CONFIGS.items():
        for key, server in json.loads((CLIENTS / name).read_text())[top].items():
            if "command" in server:
                entries.append(
                    Entry(f"{name}:{key}", server["command"], server.get("args", []), server.get("env", {}))
                )
    for line in (CLIENTS / "claude-code.sh").read_text().splitlines():
        if line.startswith("claude mcp add") and "--transport" not in line:
            words = shlex.split(line)
            cut = words.index("--")
            env = dict(w.split("=", 1) for w in words[cut - 1 :: -1] if "=" in w and w.startswith("FINOUT_"))
            entries.append(Entry(f"claude-code.sh:{words[3]}", words[cut + 1], words[cut + 2 :], env))
    return entries


def test_every_config_is_valid_json_with_the_three_forms() -> None:
    for name, top in JSON_CONFIGS.items():
        config = json.loads((CLIENTS / name).read_text())
        assert isinstance(config[top], dict) and config[top], name
        for key, server in config[top].items():
            assert "command" in server or "url" in server or "serverUrl" in server, (name, key)
            if "command" in server:
                assert isinstance(server.get("args", []), list), (name, key)
                assert all(isinstance(a, str) for a in server.get("args", [])), (name, key)
                assert all(isinstance(v, str) for v in server.get("env", {}).values()), (name, key)
            if name == "vscode.json" and "command" in server:
                assert server["type"] == "stdio"
    forms: dict[str, set[str]] = {}
    for e in stdio_entries():
        forms.setdefault(e.origin.split(":")[0], set()).add(e.form)
    assert set(forms) == {*JSON_CONFIGS, "claude-code.sh"}
    for origin, seen in forms.items():
        assert seen == {"uvx-published", "uvx-checkout", "absolute-path"}, (origin, seen)


def test_the_top_level_claude_desktop_example_is_the_one_in_clients() -> None:
    """claude_desktop_config.example.json (the name DESIGN.md's layout gives) stays the same file."""
    top = (ROOT / "claude_desktop_config.example.json").read_text()
    assert top == (CLIENTS / "claude-desktop.json").read_text()


def test_readme_shows_the_claude_code_lines_and_points_at_every_config() -> None:
    readme = (ROOT / "README.md").read_text()
    for line in (CLIENTS / "claude-code.sh").read_text().splitlines():
        if line.startswith("claude mcp add"):
            assert line in readme, f"README lacks: {line}"
    for name in JSON_CONFIGS:
        assert f"clients/{name}" in readme, name


@pytest.fixture(scope="module")
def uv_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment for uv: a private cache, and a find-links dir holding a wheel of this checkout."""
    if shutil.which("uvx", path=str(BIN)) is None:
        pytest.fail(f"uvx is not in {BIN}: install the dev extra (pip install -e '.[dev]')")
    tmp = tmp_path_factory.mktemp("uv")
    (tmp / "dist").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINOUT_", "UV_", "VIRTUAL_ENV"))}
    env |= {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp / "home"),
        "UV_CACHE_DIR": str(tmp / "cache"),
        "UV_TOOL_DIR": str(tmp / "tools"),
        "UV_PYTHON_DOWNLOADS": "never",  # the Python that runs the tests is the one to use
        "UV_NO_CONFIG": "1",
        "UV_FIND_LINKS": str(tmp / "dist"),
    }
    build = subprocess.run(
        [str(BIN / "uv"), "build", "--wheel", "--out-dir", str(tmp / "dist"), str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    assert list((tmp / "dist").glob("finout_mcp-*.whl")), build.stderr[-3000:]
    yield env


def launch_params(entry: Entry, base_env: dict[str, str], state: Path, offline: bool) -> StdioServerParameters:
    def fill(text: str) -> str:
        text = text.replace(PLACEHOLDER, str(ROOT))
        return "demo-input" if text.startswith("${input:") else text

    args = [fill(a) for a in entry.args]
    if "--demo" not in args:
        args.append("--demo")
    env = {**base_env, **{k: fill(v) for k, v in entry.env.items()}, "FINOUT_MCP_STATE_DIR": str(state)}
    if offline:
        env["UV_OFFLINE"] = "1"
    return StdioServerParameters(command=fill(entry.command), args=args, env=env, cwd=str(state))


async def list_tool_names(params: StdioServerParameters) -> set[str]:
    with anyio.fail_after(300):
        async with Client(params) as client:
            return {t.name for t in (await client.list_tools()).tools}


async def test_every_stdio_entry_starts_the_server_and_lists_tools(uv_env: dict[str, str], tmp_path: Path) -> None:
    entries = stdio_entries()
    warm = [next(e for e in entries if e.form == form) for form in ("uvx-published", "uvx-checkout")]
    results: dict[str, set[str] | BaseException] = {}

    async def run(n: int, entry: Entry, offline: bool, limit: anyio.CapacityLimiter) -> None:
        state = tmp_path / f"state-{n}"
        state.mkdir()
        async with limit:
            try:
                results[entry.origin] = await list_tool_names(launch_params(entry, uv_env, state, offline))
            except BaseException as exc:  # collected, so one failure names every entry that failed
                results[entry.origin] = exc

    one = anyio.CapacityLimiter(1)
    for n, entry in enumerate(warm):  # online, one at a time: they fill uv's cache
        await run(n, entry, False, one)
    three = anyio.CapacityLimiter(3)
    async with anyio.create_task_group() as tg:
        for n, entry in enumerate(entries, start=len(warm)):
            if entry not in warm:
                tg.start_soon(run, n, entry, True, three)

    failed = {o: repr(r)[:2000] for o, r in results.items() if isinstance(r, BaseException)}
    assert not failed, json.dumps(failed, indent=1)
    for entry in entries:
        tools = results[entry.origin]
        assert isinstance(tools, set) and "list_views" in tools, (entry.origin, tools)
        if "--read-only" in entry.args:
            assert not tools & WRITE_TOOLS, entry.origin
        elif "--toolsets" not in entry.args:
            assert tools == READ_TOOLS | WRITE_TOOLS, (entry.origin, tools)


def test_the_wheel_built_for_uvx_reports_the_pyproject_version(uv_env: dict[str, str]) -> None:
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    (wheel,) = Path(uv_env["UV_FIND_LINKS"]).glob("finout_mcp-*.whl")
    assert wheel.name.startswith(f"finout_mcp-{version}-")
    out = subprocess.run(
        ["uvx", "finout-mcp", "--version"], env=uv_env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == f"finout-mcp {version}"
